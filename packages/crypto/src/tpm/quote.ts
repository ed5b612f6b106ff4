import { createHash, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import { curveByName, hashById, hex16, TPM_ALG, type TpmHashName } from './constants.js';
import type { TpmPublic } from './public-area.js';
import { TpmReader } from './reader.js';

/** TPM 2.0 Part 2 §6.2 TPM_GENERATED_VALUE: every structure the TPM signs starts with it. */
export const TPM_GENERATED_VALUE = 0xff544347;
/** Part 2 §6.9 TPM_ST_ATTEST_QUOTE. */
export const TPM_ST_ATTEST_QUOTE = 0x8018;
/** Part 2 §10.12.12: the largest TPMS_ATTEST a TPM emits is well under this; bigger is refused before parsing. */
export const MAX_ATTEST_BYTES = 2048;
/** Part 2 §10.4.3 TPM2B_DATA: at most sizeof(TPMT_HA), 2 + 64 bytes (we take the digest part, 64). */
const MAX_EXTRA_DATA = 64;
/** Part 2 §10.5.3 TPM2B_NAME: at most sizeof(TPMU_NAME) = 2 + 64. */
const MAX_NAME = 66;
/** Part 2 §10.6.1 PCR_SELECT_MIN ((PLATFORM_PCR + 7) / 8 = 3) and PCR_SELECT_MAX for 32 PCRs (4). */
const PCR_SELECT_MIN = 3;
const PCR_SELECT_MAX = 4;
/** Part 2 §10.9.7 TPML_PCR_SELECTION: at most HASH_COUNT banks. */
const MAX_BANKS = 4;

export interface PcrBankSelection {
  readonly hash: TpmHashName;
  /** PCR indexes, ascending, as the bitmap selects them (Part 2 §10.6.2: bit n of octet n/8). */
  readonly pcrs: readonly number[];
}

/** A parsed TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE (Part 2 §10.12.12, §10.12.1 TPMS_QUOTE_INFO). */
export interface TpmQuote {
  readonly magic: number;
  readonly type: number;
  readonly qualifiedSigner: Buffer;
  readonly extraData: Buffer;
  readonly clock: bigint;
  readonly resetCount: number;
  readonly restartCount: number;
  readonly safe: boolean;
  readonly firmwareVersion: bigint;
  readonly pcrSelect: readonly PcrBankSelection[];
  readonly pcrDigest: Buffer;
}

function malformed(detail: string, cause?: unknown): FleetkeyError {
  return new FleetkeyError('ATTESTATION_QUOTE_MALFORMED', { detail, ...(cause === undefined ? {} : { cause }) });
}

/** Runs a parse; every reader fault (truncation, oversize) becomes ATTESTATION_QUOTE_MALFORMED. */
function strictly<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof FleetkeyError && e.code === 'ATTESTATION_QUOTE_MALFORMED') throw e;
    throw malformed(`${what}: ${e instanceof FleetkeyError ? (e.detail ?? e.code) : String(e)}`, e);
  }
}

function u64(r: TpmReader, field: string): bigint {
  const hi = BigInt(r.u32(`${field}.hi`));
  const lo = BigInt(r.u32(`${field}.lo`));
  return (hi << 32n) | lo;
}

/**
 * Reads a TPML_PCR_SELECTION (Part 2 §10.9.7). Strict: a bank may appear once, sizeofSelect must
 * be 3 or 4, and no bank may be empty (TPM2_Quote with an empty bank quotes nothing of it).
 */
export function readPcrSelection(r: TpmReader): PcrBankSelection[] {
  const count = r.u32('pcrSelect.count');
  if (count > MAX_BANKS) r.fail(`pcrSelect.count ${count} exceeds ${MAX_BANKS}`);
  const banks: PcrBankSelection[] = [];
  for (let i = 0; i < count; i++) {
    const id = r.u16(`pcrSelect[${i}].hash`);
    const hash = hashById(id);
    if (hash === undefined) r.fail(`pcrSelect[${i}].hash ${hex16(id)} unsupported`);
    if (banks.some((b) => b.hash === hash.name)) r.fail(`pcrSelect bank ${hash.name} repeated`);
    const size = r.bytes(1, `pcrSelect[${i}].sizeofSelect`)[0] as number;
    if (size < PCR_SELECT_MIN || size > PCR_SELECT_MAX) r.fail(`pcrSelect[${i}].sizeofSelect ${size} outside [${PCR_SELECT_MIN}, ${PCR_SELECT_MAX}]`);
    const bitmap = r.bytes(size, `pcrSelect[${i}].pcrSelect`);
    const pcrs: number[] = [];
    for (let n = 0; n < size * 8; n++) if (((bitmap[n >> 3] as number) & (1 << (n & 7))) !== 0) pcrs.push(n);
    banks.push({ hash: hash.name, pcrs });
  }
  return banks;
}

/**
 * Parses a TPMS_ATTEST holding a quote, strictly: magic and type checked, every size bounded, no
 * trailing bytes. Any other bytes are ATTESTATION_QUOTE_MALFORMED, never another exception.
 *
 * @throws FleetkeyError ATTESTATION_QUOTE_MALFORMED
 */
export function parseQuote(attest: Uint8Array): TpmQuote {
  if (!(attest instanceof Uint8Array)) throw malformed('quote is not bytes');
  if (attest.length > MAX_ATTEST_BYTES) throw malformed(`quote of ${attest.length} bytes exceeds ${MAX_ATTEST_BYTES}`);
  return strictly('TPMS_ATTEST', () => {
    const r = new TpmReader(Buffer.from(attest.buffer, attest.byteOffset, attest.byteLength), 'TPMS_ATTEST');
    const magic = r.u32('magic');
    // Part 2 §10.12.12: a restricted key signs a digest only if the TPM produced the message, and
    // the TPM refuses to sign external data that starts with TPM_GENERATED_VALUE (Part 1 §36.2).
    if (magic !== TPM_GENERATED_VALUE) throw malformed(`magic 0x${magic.toString(16)} is not TPM_GENERATED_VALUE`);
    const type = r.u16('type');
    if (type !== TPM_ST_ATTEST_QUOTE) throw malformed(`type ${hex16(type)} is not TPM_ST_ATTEST_QUOTE`);
    const qualifiedSigner = r.sized('qualifiedSigner', MAX_NAME);
    const extraData = r.sized('extraData', MAX_EXTRA_DATA);
    const clock = u64(r, 'clockInfo.clock');
    const resetCount = r.u32('clockInfo.resetCount');
    const restartCount = r.u32('clockInfo.restartCount');
    const safeByte = r.bytes(1, 'clockInfo.safe')[0] as number;
    if (safeByte > 1) throw malformed(`clockInfo.safe ${safeByte} is not TPMI_YES_NO`);
    const firmwareVersion = u64(r, 'firmwareVersion');
    const pcrSelect = readPcrSelection(r);
    const pcrDigest = r.sized('pcrDigest', 64);
    r.end();
    return { magic, type, qualifiedSigner, extraData, clock, resetCount, restartCount, safe: safeByte === 1, firmwareVersion, pcrSelect, pcrDigest };
  });
}

/** A parsed TPMT_SIGNATURE (Part 2 §11.3.4) of the schemes an AK may use. */
export type TpmSignature =
  | { readonly sigAlg: 'ecdsa'; readonly hash: TpmHashName; readonly r: Buffer; readonly s: Buffer }
  | { readonly sigAlg: 'rsassa' | 'rsapss'; readonly hash: TpmHashName; readonly sig: Buffer };

/**
 * Parses a TPMT_SIGNATURE strictly (ECDSA, RSASSA, RSAPSS; no trailing bytes).
 *
 * @throws FleetkeyError ATTESTATION_QUOTE_MALFORMED
 */
export function parseSignature(bytes: Uint8Array): TpmSignature {
  if (!(bytes instanceof Uint8Array) || bytes.length > 1024) throw malformed('signature is not bytes or is too long');
  return strictly('TPMT_SIGNATURE', () => {
    const r = new TpmReader(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), 'TPMT_SIGNATURE');
    const alg = r.u16('sigAlg');
    const hashId = r.u16('hash');
    const hash = hashById(hashId);
    if (hash === undefined) throw malformed(`signature hash ${hex16(hashId)} unsupported`);
    let out: TpmSignature;
    if (alg === TPM_ALG.ECDSA) {
      const rr = r.sized('signatureR', 66);
      const ss = r.sized('signatureS', 66);
      out = { sigAlg: 'ecdsa', hash: hash.name, r: rr, s: ss };
    } else if (alg === TPM_ALG.RSASSA || alg === TPM_ALG.RSAPSS) {
      out = { sigAlg: alg === TPM_ALG.RSASSA ? 'rsassa' : 'rsapss', hash: hash.name, sig: r.sized('sig', 512) };
    } else {
      throw malformed(`sigAlg ${hex16(alg)} unsupported`);
    }
    r.end();
    return out;
  });
}

/**
 * Checks `signature` over `attest` with the AK. The scheme and hash must be the AK's own (its
 * public area fixes them: a restricted key signs only with its scheme, Part 1 §25.2.3), so a
 * signature claiming SHA-1 or another scheme is refused rather than verified.
 */
export function verifyQuoteSignature(ak: TpmPublic, akKey: KeyObject, attest: Uint8Array, signature: TpmSignature): boolean {
  const scheme = ak.scheme;
  if (scheme === null || scheme.scheme !== signature.sigAlg || scheme.hashAlg !== signature.hash) return false;
  if (signature.sigAlg === 'ecdsa') {
    if (ak.type !== 'ecc') return false;
    const size = curveByName(ak.curve).size;
    const rr = stripLeadingZeros(signature.r);
    const ss = stripLeadingZeros(signature.s);
    if (rr.length > size || ss.length > size || rr.length === 0 || ss.length === 0) return false;
    const p1363 = Buffer.alloc(2 * size);
    rr.copy(p1363, size - rr.length);
    ss.copy(p1363, 2 * size - ss.length);
    return nodeVerify(signature.hash, attest, { key: akKey, dsaEncoding: 'ieee-p1363' }, p1363);
  }
  if (ak.type !== 'rsa') return false;
  if (signature.sigAlg === 'rsassa') return nodeVerify(signature.hash, attest, akKey, signature.sig);
  // Part 1 Annex B.7: the TPM signs RSAPSS with the largest salt (Windows and swtpm: salt = hash length is also common); auto-detect.
  return nodeVerify(signature.hash, attest, { key: akKey, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: -2 /* RSA_PSS_SALTLEN_AUTO */ }, signature.sig);
}

function stripLeadingZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

/**
 * The pcrDigest a TPM computes for a quote (Part 3 §18.4.1 TPM2_Quote): the hash, with the AK's
 * scheme hash, of the concatenated PCR values in selection order (bank by bank, ascending index).
 * `values` holds one digest per selected PCR of each bank.
 */
export function pcrDigestOf(hash: TpmHashName, selection: readonly PcrBankSelection[], values: ReadonlyMap<string, Buffer>): Buffer {
  const h = createHash(hash);
  for (const bank of selection) {
    for (const pcr of bank.pcrs) {
      const v = values.get(`${bank.hash}:${pcr}`);
      if (v === undefined) throw malformed(`no value reported for ${bank.hash} PCR ${pcr}`);
      h.update(v);
    }
  }
  return h.digest();
}

/** Encodes a TPML_PCR_SELECTION (one SHA-256 bank, 3 octets): what tpm2_quote sends for `-l sha256:…`. */
export function encodePcrSelection(banks: readonly PcrBankSelection[]): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.alloc(4);
  head.writeUInt32BE(banks.length);
  parts.push(head);
  for (const b of banks) {
    const h = Buffer.alloc(3);
    const info = [...[TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512]].map((id) => hashById(id)).find((x) => x?.name === b.hash);
    h.writeUInt16BE(info?.id ?? 0);
    const size = b.pcrs.some((p) => p >= 24) ? 4 : 3;
    h[2] = size;
    const bitmap = Buffer.alloc(size);
    for (const p of b.pcrs) bitmap[p >> 3] = (bitmap[p >> 3] as number) | (1 << (p & 7));
    parts.push(h, bitmap);
  }
  return Buffer.concat(parts);
}
