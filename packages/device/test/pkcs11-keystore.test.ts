import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pkcs11Keystore } from '../src/keystore/index.js';
import { createSoftHsm, softHsmAvailable, type SoftHsm, type SoftHsmToken } from '../../crypto/test/support/softhsm.js';

const code = (c: string) => expect.objectContaining({ code: c });

describe.skipIf(!softHsmAvailable)('Pkcs11Keystore refusals (SoftHSM2)', () => {
  let hsm: SoftHsm;
  let token: SoftHsmToken;
  let other: SoftHsmToken;
  beforeAll(async () => {
    hsm = await createSoftHsm();
    token = await hsm.addToken('fk-dev');
    other = await hsm.addToken('fk-dev-other');
  });
  afterAll(async () => {
    await hsm?.cleanup();
  });

  it('fail: a missing module, an unknown token, a wrong PIN', () => {
    expect(() => Pkcs11Keystore.open({ module: '/nonexistent/libpkcs11.so', tokenLabel: token.label, pin: token.pin })).toThrow(
      code('PKCS11_MODULE_LOAD_FAILED'),
    );
    expect(() => Pkcs11Keystore.open({ module: hsm.module, tokenLabel: 'fk-none', pin: token.pin })).toThrow(code('PKCS11_TOKEN_NOT_FOUND'));
    // Nobody in this process is logged in to `other`, so the PIN is really checked.
    expect(() => Pkcs11Keystore.open({ module: hsm.module, tokenLabel: other.label, pin: 'not-the-pin' })).toThrow(code('PKCS11_LOGIN_FAILED'));
  });

  it('keys are per token: another token does not see them', async () => {
    const a = Pkcs11Keystore.open({ module: hsm.module, tokenLabel: token.label, pin: token.pin });
    const b = Pkcs11Keystore.open({ module: hsm.module, tokenLabel: other.label, pin: other.pin });
    try {
      await a.generateKey('device', 'P-256');
      expect(await b.getKey('device')).toBeUndefined();
      expect(await b.deleteKey('device')).toBe(false);
      expect(await a.getKey('device')).toBeDefined();
    } finally {
      await a.close();
      await b.close();
    }
  });
});
