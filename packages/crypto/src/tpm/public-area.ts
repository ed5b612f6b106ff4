import { FleetkeyError } from '@fleetkey/protocol';
import {
  TPM_ALG,
  TPMA_OBJECT_RESERVED,
  curveById,
  hashById,
  hex16,
  type TpmCurveName,
  type TpmHashName,
} from './constants.js';
import { TpmReader } from './reader.js';

/**
 * A parsed TPMT_PUBLIC (TPM 2.0 Part 2 §12.2.4) of an RSA or ECC key. KEYEDHASH and SYMCIPHER
 * objects are refused: neither can be an EK or an AK.
 */
export type TpmPublic = TpmRsaPublic | TpmEccPublic;

interface TpmPublicCommon {
  readonly nameAlg: TpmHashName;
  /** TPMA_OBJECT as an unsigned 32-bit integer; test bits with TPMA_OBJECT. */
  readonly objectAttributes: number;
  /** Empty, or exactly one nameAlg digest. */
  readonly authPolicy: Buffer;
  /** TPMT_SYM_DEF_OBJECT; null for TPM_ALG_NULL (every signing key). */
  readonly symmetric: TpmSymmetric | null;
  /** The exact TPMT_PUBLIC bytes that were parsed: the input of the object's Name. */
  readonly tpmtPublic: Buffer;
}

export interface TpmSymmetric {
  readonly algorithm: 'aes';
  readonly keyBits: 128 | 192 | 256;
  readonly mode: 'cfb' | 'ctr' | 'ofb' | 'cbc' | 'ecb';
}

/** TPMT_*_SCHEME / TPMT_KDF_SCHEME; null for TPM_ALG_NULL. */
export interface TpmScheme<S extends string> {
  readonly scheme: S;
  /** Absent only for RSAES: TPMS_ENC_SCHEME_RSAES is an empty structure (Part 2 §11.2.3). */
  readonly hashAlg: TpmHashName | undefined;
  /** ECDAA commit count (Part 2 TPMS_SCHEME_ECDAA). */
  readonly count?: number;
}

export type RsaSchemeName = 'rsassa' | 'rsapss' | 'rsaes' | 'oaep';
export type EccSchemeName = 'ecdsa' | 'ecdaa' | 'ecschnorr' | 'ecdh';
export type KdfSchemeName = 'mgf1' | 'kdf1_sp800_56a' | 'kdf2' | 'kdf1_sp800_108';

export interface TpmRsaPublic extends TpmPublicCommon {
  readonly type: 'rsa';
  readonly scheme: TpmScheme<RsaSchemeName> | null;
  readonly keyBits: 1024 | 2048 | 3072 | 4096;
  /** The public exponent; the wire value 0 means 2^16 + 1 (Part 2 §12.2.3.5). */
  readonly exponent: number;
  readonly modulus: Buffer;
}

export interface TpmEccPublic extends TpmPublicCommon {
  readonly type: 'ecc';
  readonly scheme: TpmScheme<EccSchemeName> | null;
  readonly curve: TpmCurveName;
  readonly kdf: TpmScheme<KdfSchemeName> | null;
  readonly x: Buffer;
  readonly y: Buffer;
}

/** Far above any RSA-4096 or P-521 public area (~620 bytes); bounds work on hostile input. */
export const MAX_TPM_PUBLIC_BYTES = 1024;

const SYM_MODES: Readonly<Record<number, TpmSymmetric['mode']>> = {
  [TPM_ALG.CFB]: 'cfb',
  [TPM_ALG.CTR]: 'ctr',
  [TPM_ALG.OFB]: 'ofb',
  [TPM_ALG.CBC]: 'cbc',
  [TPM_ALG.ECB]: 'ecb',
};
const RSA_SCHEMES: Readonly<Record<number, RsaSchemeName>> = {
  [TPM_ALG.RSASSA]: 'rsassa',
  [TPM_ALG.RSAPSS]: 'rsapss',
  [TPM_ALG.RSAES]: 'rsaes',
  [TPM_ALG.OAEP]: 'oaep',
};
const ECC_SCHEMES: Readonly<Record<number, EccSchemeName>> = {
  [TPM_ALG.ECDSA]: 'ecdsa',
  [TPM_ALG.ECDAA]: 'ecdaa',
  [TPM_ALG.ECSCHNORR]: 'ecschnorr',
  [TPM_ALG.ECDH]: 'ecdh',
};
const KDF_SCHEMES: Readonly<Record<number, KdfSchemeName>> = {
  [TPM_ALG.MGF1]: 'mgf1',
  [TPM_ALG.KDF1_SP800_56A]: 'kdf1_sp800_56a',
  [TPM_ALG.KDF2]: 'kdf2',
  [TPM_ALG.KDF1_SP800_108]: 'kdf1_sp800_108',
};

/**
 * Parses a TPM2B_PUBLIC (a UINT16 size then a TPMT_PUBLIC), as `tpm2_createek -u`,
 * `tpm2_createak -u` and `tpm2_readpublic -o` write it. The size must cover the rest exactly.
 *
 * @throws FleetkeyError TPM_PUBLIC_MALFORMED
 */
export function parseTpm2bPublic(bytes: Uint8Array): TpmPublic {
  const buf = toBuffer(bytes);
  const r: TpmReader = new TpmReader(buf, 'TPM2B_PUBLIC');
  const size = r.u16('size');
  if (size !== r.remaining) r.fail(`size ${size} but ${r.remaining} bytes follow`);
  return parseTpmtPublic(buf.subarray(2));
}

/**
 * Parses a TPMT_PUBLIC (TPM 2.0 Part 2 §12.2.4). Strict: every algorithm must be one this module
 * knows, every sized field must have the size its algorithm implies, and no byte may follow.
 *
 * @throws FleetkeyError TPM_PUBLIC_MALFORMED
 */
export function parseTpmtPublic(bytes: Uint8Array): TpmPublic {
  const buf = toBuffer(bytes);
  const r: TpmReader = new TpmReader(buf, 'TPMT_PUBLIC');
  if (buf.length > MAX_TPM_PUBLIC_BYTES) r.fail(`${buf.length} bytes exceeds ${MAX_TPM_PUBLIC_BYTES}`);

  const type = r.u16('type');
  if (type !== TPM_ALG.RSA && type !== TPM_ALG.ECC) r.fail(`unsupported type ${hex16(type)}`);
  const nameAlgId = r.u16('nameAlg');
  const nameAlg = hashById(nameAlgId);
  // TPM_ALG_NULL is legal in TPMT_PUBLIC only for objects without a Name we could bind to.
  if (nameAlg === undefined) r.fail(`unsupported nameAlg ${hex16(nameAlgId)}`);
  const objectAttributes = r.u32('objectAttributes');
  if ((objectAttributes & TPMA_OBJECT_RESERVED) !== 0) r.fail('reserved objectAttributes bits set');
  const authPolicy = r.sized('authPolicy', 64);
  // Part 3 §12.1 (TPM2_Create): authPolicy is empty or exactly one nameAlg digest (TPM_RC_SIZE).
  if (authPolicy.length !== 0 && authPolicy.length !== nameAlg.size) {
    r.fail(`authPolicy size ${authPolicy.length} is neither 0 nor ${nameAlg.size}`);
  }
  const symmetric = readSymmetric(r);
  const common = { nameAlg: nameAlg.name, objectAttributes, authPolicy, symmetric, tpmtPublic: Buffer.from(buf) };

  if (type === TPM_ALG.RSA) {
    const scheme = readScheme(r, 'scheme', RSA_SCHEMES);
    const keyBits = r.u16('keyBits');
    if (keyBits !== 1024 && keyBits !== 2048 && keyBits !== 3072 && keyBits !== 4096) r.fail(`unsupported RSA keyBits ${keyBits}`);
    const rawExponent = r.u32('exponent');
    const exponent = rawExponent === 0 ? 0x10001 : rawExponent;
    if (exponent < 3 || exponent % 2 === 0) r.fail(`invalid RSA exponent ${exponent}`);
    const modulus = r.sized('unique.rsa', 512);
    if (modulus.length !== keyBits / 8) r.fail(`RSA modulus is ${modulus.length} bytes, keyBits says ${keyBits / 8}`);
    // A modulus shorter than keyBits (leading zero) or even cannot be a TPM-generated key.
    if ((modulus[0] ?? 0) < 0x80) r.fail('RSA modulus is shorter than keyBits');
    if (((modulus[modulus.length - 1] ?? 0) & 1) === 0) r.fail('RSA modulus is even');
    r.end();
    return { ...common, type: 'rsa', scheme, keyBits, exponent, modulus };
  }

  const scheme = readScheme(r, 'scheme', ECC_SCHEMES);
  const curveId = r.u16('curveID');
  const curve = curveById(curveId);
  if (curve === undefined) r.fail(`unsupported curveID ${hex16(curveId)}`);
  const kdf = readScheme(r, 'kdf', KDF_SCHEMES);
  const x = r.sized('unique.ecc.x', curve.size);
  const y = r.sized('unique.ecc.y', curve.size);
  // TPMs pad coordinates to the curve size; a shorter one is not a TPM's output.
  if (x.length !== curve.size || y.length !== curve.size) r.fail(`ECC point coordinates must be ${curve.size} bytes`);
  r.end();
  return { ...common, type: 'ecc', scheme, curve: curve.name, kdf, x, y };
}

function readSymmetric(r: TpmReader): TpmSymmetric | null {
  const alg = r.u16('symmetric.algorithm');
  if (alg === TPM_ALG.NULL) return null;
  if (alg !== TPM_ALG.AES) r.fail(`unsupported symmetric algorithm ${hex16(alg)}`);
  const keyBits = r.u16('symmetric.keyBits');
  if (keyBits !== 128 && keyBits !== 192 && keyBits !== 256) r.fail(`unsupported AES keyBits ${keyBits}`);
  const modeId = r.u16('symmetric.mode');
  const mode = SYM_MODES[modeId];
  if (mode === undefined) r.fail(`unsupported symmetric mode ${hex16(modeId)}`);
  return { algorithm: 'aes', keyBits, mode };
}

function readScheme<S extends string>(r: TpmReader, field: string, table: Readonly<Record<number, S>>): TpmScheme<S> | null {
  const id = r.u16(`${field}.scheme`);
  if (id === TPM_ALG.NULL) return null;
  const scheme = table[id];
  if (scheme === undefined) r.fail(`unsupported ${field} ${hex16(id)}`);
  // Part 2 §11.2.3: TPMS_ENC_SCHEME_RSAES is empty; every other scheme starts with a hashAlg.
  if (id === TPM_ALG.RSAES) return { scheme, hashAlg: undefined };
  const hashId = r.u16(`${field}.hashAlg`);
  const hash = hashById(hashId);
  if (hash === undefined) r.fail(`unsupported ${field} hashAlg ${hex16(hashId)}`);
  if (id === TPM_ALG.ECDAA) return { scheme, hashAlg: hash.name, count: r.u16(`${field}.count`) };
  return { scheme, hashAlg: hash.name };
}

function toBuffer(bytes: Uint8Array): Buffer {
  if (!(bytes instanceof Uint8Array)) {
    throw new FleetkeyError('TPM_PUBLIC_MALFORMED', { detail: 'public area is not a byte array' });
  }
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
