/**
 * One abstract keystore suite, run against every backend (a directory of sealed files, a
 * SoftHSM2 token, a TPM 2.0 on swtpm through tpm2-pkcs11), as MQTT.js runs one suite against
 * every store. Backend-specific refusals live in file-keystore.test.ts and pkcs11-keystore.test.ts.
 */
import { createPublicKey, randomBytes, verify } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ck, findKey, openPkcs11Token } from '@fleetkey/crypto';
import { BaseKeystore, type KeyCurve, type KeyHandle, type Keystore } from '../src/keystore/index.js';
import { ALL_BACKENDS, type KeystoreBackend } from './support/keystores.js';

const code = (c: string) => expect.objectContaining({ code: c });
const HASH: Record<KeyCurve, string> = { 'P-256': 'sha256', 'P-384': 'sha384' };
const NAMED: Record<KeyCurve, string> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1' };

async function signsAndVerifies(key: KeyHandle): Promise<void> {
  const msg = randomBytes(200);
  const sig = await key.sign(msg);
  expect(sig[0]).toBe(0x30); // DER ECDSA-Sig-Value, RFC 3279 §2.2.3
  expect(verify(HASH[key.curve], msg, key.publicKey, sig)).toBe(true);
  msg[7] = (msg[7] ?? 0) ^ 0x01;
  expect(verify(HASH[key.curve], msg, key.publicKey, sig)).toBe(false);
}

describe('BaseKeystore', () => {
  class Forgetful extends BaseKeystore {
    readonly kind = 'file' as const;
  }
  it('fail: a keystore that implements nothing refuses every operation', async () => {
    const ks = new Forgetful();
    await expect(ks.generateKey('a', 'P-256')).rejects.toThrow(code('INTERNAL'));
    await expect(ks.getKey('a')).rejects.toThrow(code('INTERNAL'));
    await expect(ks.deleteKey('a')).rejects.toThrow(code('INTERNAL'));
  });
});

for (const factory of ALL_BACKENDS) {
  const missing = await factory.missing();
  describe.skipIf(missing !== null)(`Keystore contract: ${factory.name}${missing === null ? '' : ` (skipped: ${missing})`}`, () => {
    let backend: KeystoreBackend;
    let ks: Keystore;
    beforeAll(async () => {
      backend = await factory.create();
    });
    afterAll(async () => {
      await backend?.cleanup();
    });
    // A fresh open per test: every test also proves the keystore reopens over existing state,
    // and keeps the TPM (no resource manager) to one loaded key per open.
    beforeEach(async () => {
      ks = await backend.open();
    });
    afterEach(async () => {
      await ks?.close();
    });

    it('fail: labels that could escape the store or collide are refused before touching it', async () => {
      for (const bad of ['', '../x', '.hidden', 'a/b', 'a\\b', 'x'.repeat(65), 'sp ace', 'nul\0', '-lead']) {
        await expect(ks.generateKey(bad, 'P-256')).rejects.toThrow(TypeError);
        await expect(ks.getKey(bad)).rejects.toThrow(TypeError);
        await expect(ks.deleteKey(bad)).rejects.toThrow(TypeError);
      }
      await expect(ks.generateKey('ok', 'P-521' as KeyCurve)).rejects.toThrow(TypeError);
      expect(await ks.getKey('ok')).toBeUndefined();
    });

    it('fail: a missing key is undefined, deleting it reports false', async () => {
      expect(await ks.getKey('never-made')).toBeUndefined();
      expect(await ks.deleteKey('never-made')).toBe(false);
    });

    it('fail: an existing label is never overwritten; the first key is kept', async () => {
      const first = await ks.generateKey('taken', 'P-256');
      await expect(ks.generateKey('taken', 'P-256')).rejects.toThrow(code(ks.kind === 'file' ? 'KEY_FILE_EXISTS' : 'PKCS11_KEY_EXISTS'));
      const again = await ks.getKey('taken');
      expect(again?.publicKey.equals(first.publicKey)).toBe(true);
      await signsAndVerifies(again!);
    });

    it('fail: a closed keystore refuses to work, and its handles stop signing', async () => {
      const key = await ks.generateKey('closing', 'P-256');
      await ks.close();
      await expect(key.sign(Buffer.from('after close'))).rejects.toThrow();
      await expect(ks.getKey('closing')).rejects.toThrow();
      await expect(ks.generateKey('closing-2', 'P-256')).rejects.toThrow();
    });

    it('fail: the private key cannot be read out of a token', async (ctx) => {
      if (backend.token === undefined) return ctx.skip();
      await ks.generateKey('sealed', 'P-256');
      const s = openPkcs11Token(backend.token);
      try {
        const key = findKey(s, 'sealed');
        expect(key).toBeDefined();
        const [token, sensitive, extractable, neverExtractable] = s.api
          .C_GetAttributeValue(s.handle, key!.privateKey, [
            { type: ck.CKA_TOKEN },
            { type: ck.CKA_SENSITIVE },
            { type: ck.CKA_EXTRACTABLE },
            { type: ck.CKA_NEVER_EXTRACTABLE },
          ])
          .map((a) => a.value[0]);
        expect({ token, sensitive, extractable, neverExtractable }).toEqual({ token: 1, sensitive: 1, extractable: 0, neverExtractable: 1 });
        // PKCS#11 v2.40 §5.7 C_GetAttributeValue: a sensitive or unextractable attribute is refused
        // (SoftHSM: CKR_ATTRIBUTE_SENSITIVE; tpm2-pkcs11 never holds the scalar: CKR_ATTRIBUTE_TYPE_INVALID).
        let err: unknown;
        try {
          s.api.C_GetAttributeValue(s.handle, key!.privateKey, [{ type: ck.CKA_VALUE }]);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(ck.Pkcs11Error);
        expect([ck.CKR_ATTRIBUTE_SENSITIVE, ck.CKR_ATTRIBUTE_TYPE_INVALID]).toContain((err as { code: number }).code);
      } finally {
        s.close();
      }
    });

    it('generates keys on each supported curve whose signatures verify with the exported SPKI', async () => {
      for (const curve of backend.curves) {
        const key = await ks.generateKey(`gen-${curve}`, curve);
        expect(key.label).toBe(`gen-${curve}`);
        expect(key.curve).toBe(curve);
        expect(key.algorithm).toBe(curve === 'P-256' ? 'ES256' : 'ES384');
        expect(key.storage).toBe(ks.kind);
        expect(key.publicKey.asymmetricKeyDetails?.namedCurve).toBe(NAMED[curve]);
        expect(createPublicKey({ key: key.spkiDer, format: 'der', type: 'spki' }).equals(key.publicKey)).toBe(true);
        await signsAndVerifies(key);
      }
    });

    it('tlsKey: a private KeyObject for file keys, undefined for token keys', async () => {
      const key = await ks.generateKey('tls', 'P-256');
      const tlsKey = key.tlsKey();
      if (ks.kind === 'file') {
        expect(tlsKey?.type).toBe('private');
        expect(createPublicKey(tlsKey!).equals(key.publicKey)).toBe(true);
      } else {
        expect(tlsKey).toBeUndefined();
      }
    });

    it('keys survive closing and reopening the keystore (a device reboot)', async () => {
      const made = await ks.generateKey('persist', 'P-256');
      const spki = Buffer.from(made.spkiDer);
      await ks.close();
      ks = await backend.open();
      const found = await ks.getKey('persist');
      expect(found?.spkiDer.equals(spki)).toBe(true);
      await signsAndVerifies(found!);
    });

    it('deleteKey destroys the key: not found again, the old handle no longer signs', async () => {
      const key = await ks.generateKey('doomed', 'P-256');
      await signsAndVerifies(key);
      expect(await ks.deleteKey('doomed')).toBe(true);
      expect(await ks.getKey('doomed')).toBeUndefined();
      await expect(key.sign(Buffer.from('x'))).rejects.toThrow();
      // Reopened storage agrees: the deletion was persisted, and the label is free again.
      await ks.close();
      ks = await backend.open();
      expect(await ks.getKey('doomed')).toBeUndefined();
      const reborn = await ks.generateKey('doomed', 'P-256');
      expect(reborn.publicKey.equals(key.publicKey)).toBe(false);
    });

    it('parallel signatures with one key all verify', async () => {
      const key = (await ks.getKey('persist')) ?? (await ks.generateKey('persist', 'P-256'));
      const msgs = Array.from({ length: 20 }, (_, i) => Buffer.from(`m${i}`));
      const sigs = await Promise.all(msgs.map((m) => key.sign(m)));
      sigs.forEach((s, i) => expect(verify('sha256', msgs[i]!, key.publicKey, s)).toBe(true));
    });

    it('two keys in use at once are independent', async (ctx) => {
      if (backend.maxLoadedKeys < 2) return ctx.skip(); // swtpm without a resource manager
      const a = await ks.generateKey('pair-a', 'P-256');
      const b = await ks.generateKey('pair-b', 'P-256');
      const msg = Buffer.from('which key?');
      const sa = await a.sign(msg);
      const sb = await b.sign(msg);
      expect(verify('sha256', msg, a.publicKey, sa)).toBe(true);
      expect(verify('sha256', msg, b.publicKey, sa)).toBe(false);
      expect(verify('sha256', msg, b.publicKey, sb)).toBe(true);
    });
  });
}
