/**
 * The file a TPM-sealed secret lives in (`machine-secret.tpm`): UTF-8 JSON, one object.
 *
 *   {
 *     "format":  "fleetkey-tpm-sealed",
 *     "version": 1,
 *     "parent":  "owner-ecc-p256",          // the primary the object was created under
 *     "pcrBank": "sha256",
 *     "pcrs":    [7],                        // the PCR selection of the policy
 *     "public":  b64(TPM2B_PUBLIC),          // the sealed data object's public area (holds the policy digest)
 *     "private": b64(TPM2B_PRIVATE)          // its sensitive area, encrypted and HMAC-ed under the parent's seed
 *   }
 *
 * Nothing in it is secret on its own: TPM2B_PRIVATE is wrapped by a key derived from the owner
 * hierarchy's seed, which never leaves the TPM (TPM 2.0 Part 1 §23.3.2 "Protected storage"), so
 * the file opens only on the TPM that wrote it, and only through the policy its public area
 * names (Part 1 §19.7.4 authPolicy). The PCR list here only tells the reader which PolicyPCR to
 * replay: editing it changes the session's digest, which then no longer matches authPolicy.
 */
import { FleetkeyError } from '@fleetkey/protocol';

export const SEALED_FORMAT = 'fleetkey-tpm-sealed';
export const SEALED_VERSION = 1;
export const SEALED_PARENT = 'owner-ecc-p256';
/** PCRs 0..23: the PC Client platform's minimum (TCG PC Client PTP §4.6.1.7). */
export const MAX_PCR = 23;

export interface SealedObject {
  readonly pcrs: readonly number[];
  readonly publicArea: Buffer;
  readonly privateArea: Buffer;
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const corrupt = (detail: string): FleetkeyError => new FleetkeyError('TPM_SEAL_CORRUPT', { detail });

/** A strictly increasing, non-empty list of PCR indices 0..23. @throws TypeError */
export function checkPcrs(pcrs: readonly number[]): void {
  if (!Array.isArray(pcrs) || pcrs.length === 0 || pcrs.length > MAX_PCR + 1) throw new TypeError('pcrs must list 1..24 PCR indices');
  let last = -1;
  for (const p of pcrs) {
    if (!Number.isInteger(p) || p < 0 || p > MAX_PCR || p <= last) throw new TypeError('pcrs must be strictly increasing integers in 0..23');
    last = p;
  }
}

/** tpm2-tools' PCR selection list (`sha256:0,7`). */
export const pcrSelection = (pcrs: readonly number[]): string => `sha256:${pcrs.join(',')}`;

/** A TPM2B (UINT16 size, then exactly that many bytes; TPM 2.0 Part 2 §10.4) of at most `max` bytes. */
function tpm2b(v: unknown, what: string, max: number): Buffer {
  if (typeof v !== 'string' || !B64.test(v)) throw corrupt(`${what} is not base64`);
  const b = Buffer.from(v, 'base64');
  if (b.length < 3 || b.readUInt16BE(0) !== b.length - 2 || b.length - 2 > max) throw corrupt(`${what} is not a TPM2B`);
  return b;
}

export function encodeSealed(o: SealedObject): Buffer {
  const doc = {
    format: SEALED_FORMAT,
    version: SEALED_VERSION,
    parent: SEALED_PARENT,
    pcrBank: 'sha256',
    pcrs: [...o.pcrs],
    public: o.publicArea.toString('base64'),
    private: o.privateArea.toString('base64'),
  };
  return Buffer.from(`${JSON.stringify(doc, null, 2)}\n`, 'utf8');
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Strict parse; anything unexpected is TPM_SEAL_CORRUPT before a byte reaches the TPM. */
export function decodeSealed(bytes: Uint8Array): SealedObject {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw corrupt('not JSON');
  }
  if (!isRecord(doc) || doc['format'] !== SEALED_FORMAT) throw corrupt('not a fleetkey TPM-sealed file');
  if (doc['version'] !== SEALED_VERSION) throw corrupt(`version ${String(doc['version'])}`);
  if (doc['parent'] !== SEALED_PARENT || doc['pcrBank'] !== 'sha256') throw corrupt('parent or PCR bank');
  const known = new Set(['format', 'version', 'parent', 'pcrBank', 'pcrs', 'public', 'private']);
  for (const k of Object.keys(doc)) if (!known.has(k)) throw corrupt(`unknown field ${k}`);
  const pcrs = doc['pcrs'];
  try {
    checkPcrs(pcrs as number[]);
  } catch {
    throw corrupt('pcrs');
  }
  // Part 2 §12.2.5 TPM2B_PUBLIC ≤ sizeof(TPMT_PUBLIC); §12.3.7 TPM2B_PRIVATE ≤ sizeof(_PRIVATE). Generous bounds.
  return { pcrs: pcrs as number[], publicArea: tpm2b(doc['public'], 'public', 1024), privateArea: tpm2b(doc['private'], 'private', 1024) };
}
