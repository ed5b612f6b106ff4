import { createHmac, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createSasToken,
  deriveDeviceKey,
  InMemoryReplayGuard,
  sasRefusalCode,
  verifySasToken,
  type VerifySasTokenOptions,
} from '../src/sas/index.js';

const key = randomBytes(32);
const resource = 'fleetkey/devices/c2c38155-b0d2-48b6-82fd-22fe3b316224';
const now = new Date('2025-06-01T12:00:00Z');
const nowS = now.getTime() / 1000;
const at = (s: number): Date => new Date((nowS + s) * 1000);
const token = (over: Partial<{ resource: string; expiresAt: Date; key: Buffer }> = {}): string =>
  createSasToken({ resource, expiresAt: at(600), key, ...over });
const opts = (over: Partial<VerifySasTokenOptions> = {}): VerifySasTokenOptions => ({
  expectedResource: resource,
  key,
  now,
  maxLifetimeSeconds: 3600,
  ...over,
});
const refused = (reason: string) => ({ ok: false, reason });

describe('SAS tokens: refusals', () => {
  it('fail: wrong key → bad_signature', async () => {
    expect(await verifySasToken(token(), opts({ key: randomBytes(32) }))).toEqual(refused('bad_signature'));
  });

  it('fail: tampered resource or expiry → bad_signature / resource_mismatch', async () => {
    const t = token();
    const se = String(nowS + 600);
    // A resource the verifier also expects (so only the signature can catch it).
    const other = `${resource}x`;
    const swapped = t.replace(`sr=${encodeURIComponent(resource)}`, `sr=${encodeURIComponent(other)}`);
    expect(await verifySasToken(swapped, opts({ expectedResource: other }))).toEqual(refused('bad_signature'));
    expect(await verifySasToken(swapped, opts())).toEqual(refused('resource_mismatch'));
    expect(await verifySasToken(t.replace(`se=${se}`, `se=${nowS + 601}`), opts())).toEqual(refused('bad_signature'));
    expect(await verifySasToken(t.replace(`se=${se}`, `se=${nowS + 599}`), opts())).toEqual(refused('bad_signature'));
    // Valid token, for someone else's resource.
    expect(await verifySasToken(t, opts({ expectedResource: 'fleetkey/devices/other' }))).toEqual(refused('resource_mismatch'));
  });

  it('fail: expired (in the past, or exactly now) → expired', async () => {
    expect(await verifySasToken(token({ expiresAt: at(-1) }), opts())).toEqual(refused('expired'));
    expect(await verifySasToken(token({ expiresAt: at(0) }), opts())).toEqual(refused('expired'));
    expect(await verifySasToken(token({ expiresAt: at(-86400 * 365) }), opts())).toEqual(refused('expired'));
  });

  it('fail: lifetime longer than the maximum → lifetime_too_long', async () => {
    expect(await verifySasToken(token({ expiresAt: at(3601) }), opts())).toEqual(refused('lifetime_too_long'));
    expect(await verifySasToken(token({ expiresAt: at(3600) }), opts())).toMatchObject({ ok: true });
  });

  const good = (): string => token();
  const sig = (): string => good().split('&')[2]!;
  const se = `se=${nowS + 600}`;
  const sr = `sr=${encodeURIComponent(resource)}`;
  it.each([
    ['empty', () => ''],
    ['missing sig', () => `${sr}&${se}`],
    ['extra field', () => `${good()}&skn=device`],
    ['duplicate field', () => `${sr}&${sr}&${sig()}`],
    ['unknown field name', () => `${sr}&${se}&sgn=${sig().slice(4)}`],
    ['field without =', () => `${sr}&${se}&sig`],
    ['empty name', () => `${sr}&${se}&=${sig().slice(4)}`],
    ['trailing &', () => `${good()}&`],
    ['leading space', () => ` ${good()}`],
    ['expiry not digits', () => `${sr}&se=12ab&${sig()}`],
    ['expiry with leading zero', () => `${sr}&se=0${nowS + 600}&${sig()}`],
    ['negative expiry', () => `${sr}&se=-1&${sig()}`],
    ['expiry with exponent', () => `${sr}&se=1e10&${sig()}`],
    ['huge expiry', () => `${sr}&se=${'9'.repeat(13)}&${sig()}`],
    ['empty resource', () => `sr=&${se}&${sig()}`],
    ['non-canonical resource encoding (%66 for f)', () => `sr=%66${encodeURIComponent(resource.slice(1))}&${se}&${sig()}`],
    ['raw / in resource', () => `sr=${resource}&${se}&${sig()}`],
    ['bad percent escape', () => `sr=%zz&${se}&${sig()}`],
    ['control character in resource', () => `sr=a%0Ab&${se}&${sig()}`],
    ['sig not url-encoded', () => `${sr}&${se}&sig=${decodeURIComponent(sig().slice(4))}`],
    ['sig truncated', () => `${sr}&${se}&sig=${sig().slice(4, -4)}`],
    ['sig of 33 bytes', () => `${sr}&${se}&sig=${encodeURIComponent(randomBytes(33).toString('base64'))}`],
    ['sig base64url', () => `${sr}&${se}&sig=${Buffer.from(sig().slice(4), 'base64url').toString('base64url')}`],
    ['too long', () => `sr=${'a'.repeat(3000)}&${se}&${sig()}`],
  ])('fail: malformed — %s', async (_name, make) => {
    expect(await verifySasToken(make(), opts())).toEqual(refused('malformed'));
  });

  it('fail: non-canonical base64 padding bits in sig → malformed', async () => {
    const s = decodeURIComponent(sig().slice(4));
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const last = s[42]!;
    const stray = alphabet[alphabet.indexOf(last) ^ 1]!; // same decoded bytes, low padding bit set
    const t = `${sr}&${se}&sig=${encodeURIComponent(`${s.slice(0, 42)}${stray}=`)}`;
    expect(Buffer.from(`${s.slice(0, 42)}${stray}=`, 'base64').equals(Buffer.from(s, 'base64'))).toBe(true);
    expect(await verifySasToken(t, opts())).toEqual(refused('malformed'));
  });

  it('fail: replay of a single-use token → replayed; the guard forgets it once expired', async () => {
    const guard = new InMemoryReplayGuard();
    const t = token({ expiresAt: at(60) });
    expect(await verifySasToken(t, opts({ replay: guard }))).toMatchObject({ ok: true });
    expect(await verifySasToken(t, opts({ replay: guard }))).toEqual(refused('replayed'));
    expect(await verifySasToken(token({ expiresAt: at(61) }), opts({ replay: guard }))).toMatchObject({ ok: true });
    expect(guard.size).toBe(2);
    // Without a guard the token is reusable until expiry (multi-use mode).
    expect(await verifySasToken(t, opts())).toMatchObject({ ok: true });
    // After expiry: refused as expired, and its guard entry is swept on the next use.
    const later = new Date((nowS + 60) * 1000);
    expect(await verifySasToken(t, opts({ replay: guard, now: later }))).toEqual(refused('expired'));
    expect(await verifySasToken(token({ expiresAt: at(120) }), opts({ replay: guard, now: later }))).toMatchObject({ ok: true });
    expect(guard.size).toBe(2); // at(60) swept, at(61) and at(120) kept
  });

  it('fail: a full guard refuses (fails closed) with replay_capacity, until entries expire', async () => {
    const guard = new InMemoryReplayGuard({ maxEntries: 3 });
    for (let i = 1; i <= 3; i++) expect(await verifySasToken(token({ expiresAt: at(i * 10) }), opts({ replay: guard }))).toMatchObject({ ok: true });
    expect(await verifySasToken(token({ expiresAt: at(100) }), opts({ replay: guard }))).toEqual(refused('replay_capacity'));
    expect(sasRefusalCode('replay_capacity')).toBe('RATE_LIMITED');
    const later = new Date((nowS + 15) * 1000);
    expect(await verifySasToken(token({ expiresAt: at(100) }), opts({ replay: guard, now: later }))).toMatchObject({ ok: true });
    expect(guard.size).toBe(3);
  });

  it('never throws and never accepts a mutated token (property)', async () => {
    const t = token();
    await fc.assert(
      fc.asyncProperty(fc.nat(t.length - 1), fc.string({ minLength: 0, maxLength: 3 }), fc.nat(3), async (pos, ins, del) => {
        const mutated = t.slice(0, pos) + ins + t.slice(pos + del);
        fc.pre(mutated !== t);
        const r = await verifySasToken(mutated, opts());
        expect(r.ok).toBe(false);
      }),
      { numRuns: 400 },
    );
  });
});

describe('SAS tokens: acceptance', () => {
  it('creates the documented format and verifies it', async () => {
    const t = token();
    const expected = createHmac('sha256', key).update(`${resource}\n${nowS + 600}`).digest('base64');
    expect(t).toBe(`sr=${encodeURIComponent(resource)}&se=${nowS + 600}&sig=${encodeURIComponent(expected)}`);
    expect(await verifySasToken(t, opts())).toEqual({ ok: true, resource, expiresAt: at(600) });
    // Field order is free; each field still once.
    const [a, b, c] = t.split('&');
    expect(await verifySasToken(`${c}&${a}&${b}`, opts())).toMatchObject({ ok: true });
  });

  it('non-ASCII resources round-trip; bad inputs to create are refused', async () => {
    const r = 'fleetkey/names/ligne-03-soudure-é';
    expect(await verifySasToken(token({ resource: r }), opts({ expectedResource: r }))).toMatchObject({ ok: true, resource: r });
    expect(() => token({ resource: 'a\nb' })).toThrow(TypeError);
    expect(() => token({ resource: '' })).toThrow(TypeError);
    expect(() => token({ key: randomBytes(8) })).toThrow(RangeError);
  });

  it('group enrollment: device keys are HMAC-SHA256(groupKey, deviceId) and differ per device', async () => {
    const group = randomBytes(32);
    const id = 'c2c38155-b0d2-48b6-82fd-22fe3b316224';
    const dk = deriveDeviceKey(group, id);
    expect(dk.equals(createHmac('sha256', group).update(id).digest())).toBe(true);
    expect(dk.equals(deriveDeviceKey(group, 'a8f3c0de-0000-4000-8000-000000000000'))).toBe(false);
    const t = createSasToken({ resource, expiresAt: at(600), key: dk });
    expect(await verifySasToken(t, opts({ key: deriveDeviceKey(group, id) }))).toMatchObject({ ok: true });
    expect(await verifySasToken(t, opts({ key: group }))).toEqual(refused('bad_signature'));
    expect(() => deriveDeviceKey(randomBytes(16), id)).toThrow(RangeError);
  });
});
