/**
 * Signatures per second through SoftHSM2 (REAL-COMPONENTS.md quotes ~24,000 P-256/s for raw
 * C_Sign), next to Node's own SoftwareSigner as a same-run baseline. Figures are printed; the
 * assertions are only sanity floors, since the machine is shared.
 */
import { createHash, generateKeyPairSync, verify } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SoftwareSigner } from '../src/signer/software-signer.js';
import { ck, generateEcKeyPair, openPkcs11Token, Pkcs11Signer, type Pkcs11EcKey, type Pkcs11Session } from '../src/pkcs11/index.js';
import { createSoftHsm, softHsmAvailable, type SoftHsm } from './support/softhsm.js';

const DURATION_MS = 600;

async function rate(fn: () => Promise<unknown> | unknown, batch = 1): Promise<number> {
  for (let i = 0; i < 50; i++) await fn(); // warm-up
  let n = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(DURATION_MS) * 1_000_000n;
  while (process.hrtime.bigint() < deadline) {
    await fn();
    n += batch;
  }
  return Math.round(n / (Number(process.hrtime.bigint() - start) / 1e9));
}

describe.skipIf(!softHsmAvailable)('PKCS#11 signing throughput (SoftHSM2, P-256)', () => {
  let hsm: SoftHsm;
  let session: Pkcs11Session;
  let key: Pkcs11EcKey;
  const figures: Record<string, number> = {};

  beforeAll(async () => {
    hsm = await createSoftHsm();
    const t = await hsm.addToken('fk-bench');
    session = openPkcs11Token({ module: hsm.module, tokenLabel: t.label, pin: t.pin });
    key = await generateEcKeyPair(session, { label: 'bench', curve: 'P-256' });
  });
  afterAll(async () => {
    console.log('signatures/s:', JSON.stringify(figures, null, 1));
    session?.close();
    await hsm?.cleanup();
  });

  it('measures raw C_Sign, Pkcs11Signer (1 and 2 sessions) and SoftwareSigner', async () => {
    const digest = createHash('sha256').update('tbsCertificate').digest();
    const api = session.api;
    const h = session.handle;
    figures['raw C_SignInit+C_Sign (sync, digest only)'] = await rate(() => {
      api.C_SignInit(h, { mechanism: ck.CKM_ECDSA }, key.privateKey);
      return api.C_Sign(h, digest, Buffer.alloc(64));
    });

    const msg = Buffer.alloc(600, 1); // about a certificate's TBS
    const one = new Pkcs11Signer(session, key);
    figures['Pkcs11Signer.sign, 1 session, sequential'] = await rate(() => one.sign(msg));
    await one.close();

    const two = new Pkcs11Signer(session, key, { sessions: 2 });
    figures['Pkcs11Signer.sign, 2 sessions, 16 in flight'] = await rate(
      () => Promise.all(Array.from({ length: 16 }, () => two.sign(msg))),
      16,
    );
    const sig = await two.sign(msg);
    expect(verify('sha256', msg, key.publicKey, sig)).toBe(true);
    await two.close();

    const sw = new SoftwareSigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    figures['SoftwareSigner.sign (Node, baseline)'] = await rate(() => sw.sign(msg));

    expect(figures['raw C_SignInit+C_Sign (sync, digest only)']).toBeGreaterThan(500);
    expect(figures['Pkcs11Signer.sign, 1 session, sequential']).toBeGreaterThan(200);
  });
});
