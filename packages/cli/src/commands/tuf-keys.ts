import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { generateTufKeyPair, Pkcs11Signer, softwareTufSigner, tufKeyId, tufKeyOf, tufSignerFrom, type TufSigner } from '@fleetkey/crypto';
import type { TufKey } from '@fleetkey/protocol';

/**
 * Offline TUF keys for `fleetkey release` and `fleetkey updates`: PKCS#8 PEM files (encrypted
 * with a passphrase from an environment variable when given, mode 0600), or a key on a PKCS#11
 * token (`pkcs11:<module>:<token label>:<key label>`, PIN from FLEETKEY_PKCS11_PIN). Nothing here
 * talks to a server: signing works on an air-gapped machine.
 */
export function loadSigner(spec: string, passphraseEnv?: string): TufSigner {
  if (spec.startsWith('pkcs11:')) {
    const [, module, tokenLabel, keyLabel] = spec.split(':');
    const pin = process.env['FLEETKEY_PKCS11_PIN'];
    if (module === undefined || tokenLabel === undefined || keyLabel === undefined || pin === undefined) throw new Error('pkcs11 keys are pkcs11:<module>:<token>:<label> with FLEETKEY_PKCS11_PIN set');
    return tufSignerFrom(Pkcs11Signer.open({ module, tokenLabel, keyLabel, pin }));
  }
  const mode = statSync(spec).mode & 0o077;
  if (mode !== 0) throw new Error(`${spec} is readable by other users (chmod 600 it)`);
  const passphrase = passphraseEnv === undefined ? undefined : process.env[passphraseEnv];
  const key = createPrivateKey({ key: readFileSync(spec), format: 'pem', ...(passphrase === undefined ? {} : { passphrase }) });
  return softwareTufSigner(key);
}

/** A public TUF key from a public or private key file, or a PKCS#11 key. */
export function loadPublic(spec: string, passphraseEnv?: string): TufKey {
  if (spec.startsWith('pkcs11:')) return loadSigner(spec).key;
  const text = readFileSync(spec, 'utf8');
  if (text.includes('PRIVATE KEY')) return loadSigner(spec, passphraseEnv).key;
  return tufKeyOf(createPublicKey(text));
}

export function generateKeyFile(out: string, type: 'ed25519' | 'ecdsa', passphraseEnv?: string): { keyid: string; publicPath: string } {
  const { privateKey } = generateTufKeyPair(type);
  const passphrase = passphraseEnv === undefined ? undefined : process.env[passphraseEnv];
  if (passphraseEnv !== undefined && (passphrase === undefined || passphrase.length < 12)) throw new Error(`${passphraseEnv} must hold a passphrase of at least 12 characters`);
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8', ...(passphrase === undefined ? {} : { cipher: 'aes-256-cbc', passphrase }) });
  writeFileSync(out, pem, { mode: 0o600, flag: 'wx' });
  const pub: KeyObject = createPublicKey(privateKey);
  const publicPath = `${out}.pub`;
  writeFileSync(publicPath, pub.export({ format: 'pem', type: 'spki' }), { mode: 0o644, flag: 'wx' });
  return { keyid: tufKeyId(tufKeyOf(pub)), publicPath };
}
