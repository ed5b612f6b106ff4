import {
  constants,
  createCipheriv,
  createHmac,
  diffieHellman,
  generateKeyPairSync,
  publicEncrypt,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import { TPMA_OBJECT, curveByName, hashByName } from './constants.js';
import { kdfa, kdfe } from './kdf.js';
import { assertNameShape } from './name.js';
import { parseTpm2bPublic, type TpmPublic } from './public-area.js';
import { tpmPublicToKeyObject } from './public-key.js';

export interface MakeCredentialInput {
  /** The EK public area: parsed, or TPM2B_PUBLIC bytes as `tpm2_createek -u` writes them. */
  readonly ekPublic: TpmPublic | Uint8Array;
  /** The AK Name (computeName of the AK public area), which the TPM checks at activation. */
  readonly akName: Uint8Array;
  /** The secret only that TPM can recover: 1 byte up to one EK nameAlg digest. */
  readonly credential: Uint8Array;
}

export interface MakeCredentialResult {
  /** TPM2B_ID_OBJECT: the integrity HMAC and the encrypted credential (`credentialBlob`). */
  readonly credentialBlob: Buffer;
  /** TPM2B_ENCRYPTED_SECRET: the seed, encrypted to the EK (`secret`). */
  readonly encryptedSecret: Buffer;
}

/**
 * TPM2_MakeCredential done outside a TPM (TPM 2.0 Part 1 §24, Part 3 §12.6): the server encrypts
 * a credential so that only the TPM holding `ekPublic`'s private key, and only while an object
 * with `akName` is loaded in it, can recover it with TPM2_ActivateCredential.
 * RSA EK: random seed, RSA-OAEP(nameAlg, label "IDENTITY\0"); ECC EK: one-pass ECDH with an
 * ephemeral key and KDFe (Part 1 Annex C.6.4 / §11.4.10.3). The EK's own nameAlg and symmetric
 * definition select the hash, seed size and AES key size.
 *
 * @throws FleetkeyError TPM_PUBLIC_MALFORMED, TPM_EK_UNSUPPORTED, TPM_CREDENTIAL_INVALID
 */
export function makeCredential(input: MakeCredentialInput): MakeCredentialResult {
  const ek = input.ekPublic instanceof Uint8Array ? parseTpm2bPublic(input.ekPublic) : input.ekPublic;
  const sym = checkEk(ek);
  const akName = Buffer.from(input.akName);
  assertNameShape(akName);
  const hash = hashByName(ek.nameAlg);
  // Part 3 §12.6: the TPM refuses a credential larger than the EK nameAlg digest (TPM_RC_SIZE).
  if (input.credential.length === 0 || input.credential.length > hash.size) {
    throw new FleetkeyError('TPM_CREDENTIAL_INVALID', { detail: `credential is ${input.credential.length} bytes; 1..${hash.size} allowed` });
  }

  const { seed, encryptedSecret } = ek.type === 'rsa' ? rsaSeed(ek) : eccSeed(ek);

  // Part 1 §24.4: symmetric key bound to the AK Name, zero IV (the key is used once).
  const symKey = kdfa(ek.nameAlg, seed, 'STORAGE', akName, Buffer.alloc(0), sym.keyBits);
  const plain = Buffer.concat([u16(input.credential.length), input.credential]);
  const cipher = createCipheriv(`aes-${sym.keyBits}-cfb`, symKey, Buffer.alloc(16));
  const encIdentity = Buffer.concat([cipher.update(plain), cipher.final()]);

  // Part 1 §24.5: outer HMAC over encIdentity || Name, so a blob made for another AK fails.
  const hmacKey = kdfa(ek.nameAlg, seed, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), hash.size * 8);
  const integrity = createHmac(hash.node, hmacKey).update(encIdentity).update(akName).digest();
  seed.fill(0);
  symKey.fill(0);
  hmacKey.fill(0);

  const idObject = Buffer.concat([u16(integrity.length), integrity, encIdentity]);
  return { credentialBlob: Buffer.concat([u16(idObject.length), idObject]), encryptedSecret };
}

/**
 * Compares the credential the device returned with the one sent, in constant time.
 *
 * @throws FleetkeyError TPM_CREDENTIAL_PROOF_INVALID
 */
export function verifyCredentialProof(expected: Uint8Array, presented: Uint8Array): void {
  if (expected.length === 0) throw new FleetkeyError('TPM_CREDENTIAL_PROOF_INVALID', { detail: 'no credential was issued' });
  if (presented.length !== expected.length || !timingSafeEqual(expected, presented)) {
    throw new FleetkeyError('TPM_CREDENTIAL_PROOF_INVALID', { detail: 'presented credential differs from the issued one' });
  }
}

/** An EK must be a storage key (every TCG EK Credential Profile template): restricted decrypt, AES-CFB. */
function checkEk(ek: TpmPublic): { keyBits: 128 | 192 | 256 } {
  const fail = (detail: string): never => {
    throw new FleetkeyError('TPM_EK_UNSUPPORTED', { detail });
  };
  const a = ek.objectAttributes;
  if ((a & TPMA_OBJECT.restricted) === 0 || (a & TPMA_OBJECT.decrypt) === 0) fail('EK is not a restricted decryption key');
  if ((a & TPMA_OBJECT.sign) !== 0) fail('EK has the sign attribute');
  const sym = ek.symmetric;
  if (sym === null || sym.mode !== 'cfb') return fail('EK symmetric is not AES-CFB');
  // Part 2 §12.2.3.5/6: a restricted decryption key's asymmetric scheme is TPM_ALG_NULL; the
  // seed protection is fixed by the key type and nameAlg, not by a scheme.
  if (ek.scheme !== null) fail(`EK scheme ${ek.scheme.scheme} is not TPM_ALG_NULL`);
  if (ek.type === 'ecc' && ek.kdf !== null) fail(`EK kdf ${ek.kdf.scheme} is not TPM_ALG_NULL`);
  return { keyBits: sym.keyBits };
}

interface Seed {
  readonly seed: Buffer;
  readonly encryptedSecret: Buffer;
}

function rsaSeed(ek: TpmPublic & { type: 'rsa' }): Seed {
  const hash = hashByName(ek.nameAlg);
  const seed = randomBytes(hash.size);
  // Part 1 Annex B (RSA secret sharing): OAEP with the EK nameAlg; the label includes its 0x00.
  const secret = publicEncrypt(
    { key: tpmPublicToKeyObject(ek), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash.node, oaepLabel: Buffer.from('IDENTITY\0', 'latin1') },
    seed,
  );
  return { seed, encryptedSecret: Buffer.concat([u16(secret.length), secret]) };
}

function eccSeed(ek: TpmPublic & { type: 'ecc' }): Seed {
  const curve = curveByName(ek.curve);
  const hash = hashByName(ek.nameAlg);
  const eph = generateKeyPairSync('ec', { namedCurve: curve.node });
  const jwk = eph.publicKey.export({ format: 'jwk' });
  const ex = pad(Buffer.from(jwk.x ?? '', 'base64url'), curve.size);
  const ey = pad(Buffer.from(jwk.y ?? '', 'base64url'), curve.size);
  // Z is the x-coordinate of the shared point, fixed length (SP 800-56A §5.7.1.2).
  const z = pad(diffieHellman({ privateKey: eph.privateKey, publicKey: tpmPublicToKeyObject(ek) }), curve.size);
  // Part 1 Annex C.6.4: seed = KDFe(nameAlg, Z, "IDENTITY", ephemeral.x, EK.x, digest bits).
  const seed = kdfe(ek.nameAlg, z, 'IDENTITY', ex, ek.x, hash.size * 8);
  z.fill(0);
  // TPMS_ECC_POINT of the ephemeral key, inside TPM2B_ENCRYPTED_SECRET.
  const point = Buffer.concat([u16(ex.length), ex, u16(ey.length), ey]);
  return { seed, encryptedSecret: Buffer.concat([u16(point.length), point]) };
}

function pad(b: Buffer, size: number): Buffer {
  if (b.length > size) throw new Error('unreachable: coordinate longer than the curve');
  return b.length === size ? b : Buffer.concat([Buffer.alloc(size - b.length), b]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
