/**
 * TUF metadata signing and threshold verification (issue 12), checked against an independent
 * implementation: @tufjs/models (what tuf-js verifies with) must accept what we sign, with
 * ed25519, ECDSA P-256 software keys and a P-256 key inside SoftHSM2 (PKCS#11) as root keys.
 */
import { Metadata, MetadataKind } from '@tufjs/models';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { addSignature, buildRoot, canonicalBytes, generateTufKeyPair, softwareTufSigner, tufKeyId, tufSignerFrom, verifyThreshold, type TufSigner } from '../src/tuf/index.js';
import { generateEcKeyPair, openPkcs11Token, Pkcs11Signer, type Pkcs11Session } from '../src/pkcs11/index.js';
import { createSoftHsm, softHsmAvailable, type SoftHsm } from './support/softhsm.js';

const sw = (type: 'ed25519' | 'ecdsa') => softwareTufSigner(generateTufKeyPair(type).privateKey);
const rootOf = (rootKeys: TufSigner[], version = 1) =>
  buildRoot({
    version,
    expiresAt: Date.now() + 86_400_000,
    root: { keys: rootKeys.map((k) => k.key), threshold: 2 },
    targets: { keys: [sw('ed25519').key], threshold: 1 },
    snapshot: { keys: [sw('ed25519').key], threshold: 1 },
    timestamp: { keys: [sw('ed25519').key], threshold: 1 },
  });
async function sign<T>(signed: T, signers: TufSigner[]) {
  let d = { signatures: [] as { keyid: string; sig: string }[], signed };
  for (const s of signers) d = await addSignature(d, s);
  return d;
}
const trust = (root: ReturnType<typeof rootOf>) => ({ keys: root.keys, keyids: root.roles.root.keyids, threshold: root.roles.root.threshold });

describe('TUF signing and thresholds', () => {
  test('canonical JSON is OLPC: sorted keys, no whitespace, only " and \\ escaped', () => {
    expect(canonicalBytes({ b: 1, a: ['x\ny', 'q"'] }).toString()).toBe('{"a":["x\ny","q\\""],"b":1}');
  });

  test('a root signed by 2 of 3 (ed25519 + ECDSA P-256) verifies in @tufjs/models and in ours', async () => {
    const keys = [sw('ed25519'), sw('ecdsa'), sw('ed25519')];
    const root = rootOf(keys);
    const doc = await sign(root, [keys[0]!, keys[1]!]);
    const md = Metadata.fromJSON(MetadataKind.Root, JSON.parse(JSON.stringify(doc)));
    expect(() => md.verifyDelegate('root', md)).not.toThrow();
    expect(verifyThreshold(root, doc.signatures, trust(root)).ok).toBe(true);
  });

  test('fail: under threshold, the same key twice, a foreign key, a tampered body', async () => {
    const keys = [sw('ed25519'), sw('ed25519'), sw('ed25519')];
    const root = rootOf(keys);
    const one = await sign(root, [keys[0]!]);
    expect(verifyThreshold(root, one.signatures, trust(root)).ok).toBe(false);
    const twice = { ...one, signatures: [one.signatures[0]!, one.signatures[0]!] };
    expect(verifyThreshold(root, twice.signatures, trust(root)).validKeyIds).toHaveLength(1);
    const foreign = await sign(root, [keys[0]!, sw('ed25519')]);
    const r = verifyThreshold(root, foreign.signatures, trust(root));
    expect(r.ok).toBe(false);
    expect(r.unknownKeyIds).toHaveLength(1);
    const good = await sign(root, keys.slice(0, 2));
    expect(verifyThreshold({ ...root, version: 2 }, good.signatures, trust(root)).ok).toBe(false);
    const md = Metadata.fromJSON(MetadataKind.Root, JSON.parse(JSON.stringify({ ...one })));
    expect(() => md.verifyDelegate('root', md)).toThrow();
  });

  test('key ids are the sha256 of the canonical key (what @tufjs/models computes too)', () => {
    const k = sw('ecdsa');
    expect(k.keyId).toBe(tufKeyId(k.key));
    expect(k.keyId).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe.skipIf(!softHsmAvailable && process.env['CI'] !== 'true')('TUF root key in PKCS#11 (SoftHSM2)', () => {
  let hsm: SoftHsm;
  let session: Pkcs11Session;
  let token: TufSigner;

  beforeAll(async () => {
    hsm = await createSoftHsm();
    const t = await hsm.addToken('fk-tuf-root');
    session = openPkcs11Token({ module: hsm.module, tokenLabel: t.label, pin: t.pin });
    const key = await generateEcKeyPair(session, { label: 'root-1', curve: 'P-256' });
    token = tufSignerFrom(new Pkcs11Signer(session, key));
  });
  afterAll(async () => {
    session?.close();
    await hsm?.cleanup();
  });

  test('a root signed with a token key (private key never leaves SoftHSM) and a file key verifies in @tufjs/models', async () => {
    const file = sw('ed25519');
    const root = rootOf([token, file, sw('ed25519')]);
    const doc = await sign(root, [token, file]);
    expect(token.key.keytype).toBe('ecdsa');
    const md = Metadata.fromJSON(MetadataKind.Root, JSON.parse(JSON.stringify(doc)));
    expect(() => md.verifyDelegate('root', md)).not.toThrow();
    expect(verifyThreshold(root, doc.signatures, trust(root)).validKeyIds).toContain(token.keyId);
  });
});
