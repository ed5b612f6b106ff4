/**
 * TPM 2.0 algorithm identifiers and attribute bits this module understands (TPM 2.0 Part 2 §6.3
 * TPM_ALG_ID, §8.3 TPMA_OBJECT, §6.4 TPM_ECC_CURVE). The tables are deliberately closed: an
 * identifier that is not listed here is refused by the parser rather than carried along.
 */

export const TPM_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  MGF1: 0x0007,
  KEYEDHASH: 0x0008,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  ECDAA: 0x001a,
  ECSCHNORR: 0x001c,
  KDF1_SP800_56A: 0x0020,
  KDF2: 0x0021,
  KDF1_SP800_108: 0x0022,
  ECC: 0x0023,
  SYMCIPHER: 0x0025,
  CTR: 0x0040,
  OFB: 0x0041,
  CBC: 0x0042,
  CFB: 0x0043,
  ECB: 0x0044,
} as const;

/** TPMA_OBJECT bits (TPM 2.0 Part 2 §8.3.2). */
export const TPMA_OBJECT = {
  fixedTPM: 1 << 1,
  stClear: 1 << 2,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  adminWithPolicy: 1 << 7,
  noDA: 1 << 10,
  encryptedDuplication: 1 << 11,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
  x509sign: 1 << 19,
} as const;

export type TpmaObjectBit = keyof typeof TPMA_OBJECT;

/**
 * Bits TPM 2.0 Part 2 §8.3.2 marks reserved: a TPM refuses to create an object with any of them
 * set (TPM_RC_RESERVED_BITS), so a public area carrying one did not come from a TPM.
 */
export const TPMA_OBJECT_RESERVED = (1 << 0) | (1 << 3) | (0b11 << 8) | (0b1111 << 12) | (0xfff << 20);

export type TpmHashName = 'sha1' | 'sha256' | 'sha384' | 'sha512';

export interface TpmHashInfo {
  readonly id: number;
  readonly name: TpmHashName;
  /** Node's digest name. */
  readonly node: string;
  readonly size: number;
}

const HASHES: readonly TpmHashInfo[] = [
  { id: TPM_ALG.SHA1, name: 'sha1', node: 'sha1', size: 20 },
  { id: TPM_ALG.SHA256, name: 'sha256', node: 'sha256', size: 32 },
  { id: TPM_ALG.SHA384, name: 'sha384', node: 'sha384', size: 48 },
  { id: TPM_ALG.SHA512, name: 'sha512', node: 'sha512', size: 64 },
];

export function hashById(id: number): TpmHashInfo | undefined {
  return HASHES.find((h) => h.id === id);
}

export function hashByName(name: TpmHashName): TpmHashInfo {
  const h = HASHES.find((x) => x.name === name);
  if (h === undefined) throw new Error(`unreachable: hash ${name}`);
  return h;
}

export type TpmCurveName = 'P-256' | 'P-384' | 'P-521';

export interface TpmCurveInfo {
  readonly id: number;
  readonly name: TpmCurveName;
  /** OpenSSL curve name for Node's ECDH. */
  readonly node: string;
  /** Byte length of a coordinate: TPMS_ECC_POINT coordinates are padded to it. */
  readonly size: number;
}

/** TPM_ECC_CURVE (TPM 2.0 Part 2 §6.4). BN and SM2 curves are not supported by Node. */
const CURVES: readonly TpmCurveInfo[] = [
  { id: 0x0003, name: 'P-256', node: 'prime256v1', size: 32 },
  { id: 0x0004, name: 'P-384', node: 'secp384r1', size: 48 },
  { id: 0x0005, name: 'P-521', node: 'secp521r1', size: 66 },
];

export function curveById(id: number): TpmCurveInfo | undefined {
  return CURVES.find((c) => c.id === id);
}

export function curveByName(name: TpmCurveName): TpmCurveInfo {
  const c = CURVES.find((x) => x.name === name);
  if (c === undefined) throw new Error(`unreachable: curve ${name}`);
  return c;
}

export function hex16(v: number): string {
  return `0x${v.toString(16).padStart(4, '0')}`;
}
