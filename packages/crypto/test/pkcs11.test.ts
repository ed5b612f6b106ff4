import { randomBytes, verify } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ck,
  findKey,
  generateEcKeyPair,
  initPkcs11Token,
  openPkcs11Token,
  Pkcs11Signer,
  type Pkcs11Session,
} from '../src/pkcs11/index.js';
import { createSoftHsm, softHsmAvailable, type SoftHsm, type SoftHsmToken } from './support/softhsm.js';

const code = (c: string) => expect.objectContaining({ code: c });

describe.skipIf(!softHsmAvailable)('PKCS#11 on SoftHSM2', () => {
  let hsm: SoftHsm;
  let ca: SoftHsmToken;
  let other: SoftHsmToken;
  let session: Pkcs11Session;

  beforeAll(async () => {
    hsm = await createSoftHsm();
    other = await hsm.addToken('fk-other');
    ca = await hsm.addToken('fk-ca');
    session = openPkcs11Token({ module: hsm.module, tokenLabel: ca.label, pin: ca.pin });
  });
  afterAll(async () => {
    session?.close();
    await hsm?.cleanup();
  });

  it('fail: unknown module, unknown token label, wrong PIN', () => {
    expect(() => openPkcs11Token({ module: '/nonexistent/libpkcs11.so', tokenLabel: ca.label, pin: ca.pin })).toThrow(
      code('PKCS11_MODULE_LOAD_FAILED'),
    );
    expect(() => openPkcs11Token({ module: hsm.module, tokenLabel: 'fk-nope', pin: ca.pin })).toThrow(code('PKCS11_TOKEN_NOT_FOUND'));
    // `other` is not logged in by anyone in this process, so C_Login really checks the PIN.
    expect(() => openPkcs11Token({ module: hsm.module, tokenLabel: other.label, pin: 'wrong-pin' })).toThrow(code('PKCS11_LOGIN_FAILED'));
  });

  it('fail: a duplicate label, an unknown key, a closed session', async () => {
    await generateEcKeyPair(session, { label: 'dup', curve: 'P-256' });
    await expect(generateEcKeyPair(session, { label: 'dup', curve: 'P-256' })).rejects.toThrow(code('PKCS11_KEY_EXISTS'));
    expect(findKey(session, 'no-such-key')).toBeUndefined();
    expect(() => Pkcs11Signer.open({ module: hsm.module, tokenLabel: ca.label, pin: ca.pin, keyLabel: 'no-such-key' })).toThrow(
      code('PKCS11_KEY_NOT_FOUND'),
    );
    const s = openPkcs11Token({ module: hsm.module, tokenLabel: ca.label, pin: ca.pin });
    s.close();
    expect(() => s.handle).toThrow(code('PKCS11_SESSION_CLOSED'));
    expect(() => findKey(s, 'dup')).toThrow(code('PKCS11_SESSION_CLOSED'));
  });

  it('fail: the private key cannot be read, made extractable, or wrapped out', async () => {
    const key = await generateEcKeyPair(session, { label: 'no-export', curve: 'P-256' });
    const api = session.api;
    const h = session.handle;
    let err: unknown;
    try {
      api.C_GetAttributeValue(h, key.privateKey, [{ type: ck.CKA_VALUE }]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ck.Pkcs11Error);
    expect((err as { code: number }).code).toBe(ck.CKR_ATTRIBUTE_SENSITIVE);

    const flags = api.C_GetAttributeValue(h, key.privateKey, [
      { type: ck.CKA_EXTRACTABLE },
      { type: ck.CKA_SENSITIVE },
      { type: ck.CKA_NEVER_EXTRACTABLE },
      { type: ck.CKA_ALWAYS_SENSITIVE },
      { type: ck.CKA_TOKEN },
      { type: ck.CKA_PRIVATE },
      { type: ck.CKA_SIGN },
    ]);
    expect(flags.map((a) => a.value[0])).toEqual([0, 1, 1, 1, 1, 1, 1]);

    // PKCS#11 v2.40 §4.9: CKA_EXTRACTABLE can go true→false, never back.
    expect(() => api.C_SetAttributeValue(h, key.privateKey, [{ type: ck.CKA_EXTRACTABLE, value: true }])).toThrow();

    const wrappingKey = api.C_GenerateKey(h, { mechanism: ck.CKM_AES_KEY_GEN }, [
      { type: ck.CKA_VALUE_LEN, value: 32 },
      { type: ck.CKA_WRAP, value: true },
      { type: ck.CKA_TOKEN, value: false },
    ]);
    let wrapErr: unknown;
    try {
      api.C_WrapKey(h, { mechanism: ck.CKM_AES_KEY_WRAP_PAD }, wrappingKey, key.privateKey, Buffer.alloc(512));
    } catch (e) {
      wrapErr = e;
    }
    expect((wrapErr as { code: number } | undefined)?.code).toBe(ck.CKR_KEY_UNEXTRACTABLE);
  });

  it.each(['P-256', 'P-384'] as const)('%s: signatures are DER and verify in Node; a changed message does not', async (curve) => {
    const key = await generateEcKeyPair(session, { label: `sig-${curve}`, curve });
    const signer = new Pkcs11Signer(session, key);
    expect(signer.algorithm).toBe(curve === 'P-256' ? 'ES256' : 'ES384');
    expect(signer.publicKey.asymmetricKeyDetails?.namedCurve).toBe(curve === 'P-256' ? 'prime256v1' : 'secp384r1');
    const hash = curve === 'P-256' ? 'sha256' : 'sha384';
    for (let i = 0; i < 20; i++) {
      const msg = randomBytes(100 + i);
      const sig = await signer.sign(msg);
      expect(sig[0]).toBe(0x30);
      expect(verify(hash, msg, signer.publicKey, sig)).toBe(true);
      msg[0] = (msg[0] ?? 0) ^ 1;
      expect(verify(hash, msg, signer.publicKey, sig)).toBe(false);
    }
    await signer.close();
    expect(session.closed).toBe(false); // the signer did not own the session
  });

  it('keys persist on the token and are found by label from a new session; CKA_ID links the halves', async () => {
    const id = randomBytes(20);
    const made = await generateEcKeyPair(session, { label: 'persist', curve: 'P-384', id });
    const signer = Pkcs11Signer.open({ module: hsm.module, tokenLabel: ca.label, pin: ca.pin, keyLabel: 'persist' });
    expect(signer.key.id.equals(id)).toBe(true);
    expect(signer.key.curve).toBe('P-384');
    expect(signer.publicKey.equals(made.publicKey)).toBe(true);
    const sig = await signer.sign(Buffer.from('tbs'));
    expect(verify('sha384', Buffer.from('tbs'), made.publicKey, sig)).toBe(true);
    await signer.close();
    await expect(signer.sign(Buffer.from('x'))).rejects.toThrow(code('PKCS11_SESSION_CLOSED'));
  });

  it('parallel signatures over a pool of sessions all verify', async () => {
    const key = await generateEcKeyPair(session, { label: 'pool', curve: 'P-256' });
    const signer = new Pkcs11Signer(session, key, { sessions: 3 });
    const msgs = Array.from({ length: 150 }, (_, i) => Buffer.from(`message ${i}`));
    // The owner of the borrowed session has an operation open on it (a session runs one at a
    // time: SoftHSM answers CKR_OPERATION_ACTIVE). The signer must sign on sessions of its own.
    session.api.C_SignInit(session.handle, { mechanism: ck.CKM_ECDSA }, key.privateKey);
    const sigs = await Promise.all(msgs.map((m) => signer.sign(m)));
    session.api.C_Sign(session.handle, Buffer.alloc(32, 1), Buffer.alloc(64));
    sigs.forEach((s, i) => expect(verify('sha256', msgs[i]!, key.publicKey, s)).toBe(true));
    await signer.close();
  });

  it('initPkcs11Token initialises a free slot from Node (the tpm2-pkcs11 path), then keys work there', async () => {
    initPkcs11Token({ module: hsm.module, label: 'fk-from-node', soPin: 'so-pin-1', pin: 'user-pin-1' });
    const s = openPkcs11Token({ module: hsm.module, tokenLabel: 'fk-from-node', pin: 'user-pin-1' });
    try {
      const key = await generateEcKeyPair(s, { label: 'device', curve: 'P-256' });
      const sig = await new Pkcs11Signer(s, key).sign(Buffer.from('csr'));
      expect(verify('sha256', Buffer.from('csr'), key.publicKey, sig)).toBe(true);
      // The other token does not see this token's key.
      expect(findKey(session, 'device')).toBeUndefined();
    } finally {
      s.close();
    }
    expect(() => openPkcs11Token({ module: hsm.module, tokenLabel: 'fk-from-node', pin: 'wrong' })).toThrow(code('PKCS11_LOGIN_FAILED'));
  });
});
