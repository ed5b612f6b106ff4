import { createHash } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import { hashById, hashByName } from './constants.js';
import { parseTpmtPublic, type TpmPublic } from './public-area.js';

/**
 * The Name of an object (TPM 2.0 Part 1 §16): nameAlg (UINT16) || H_nameAlg(TPMT_PUBLIC).
 * For the usual SHA-256 AK this is 0x000b || SHA-256(TPMT_PUBLIC), 34 bytes. Accepts the raw
 * TPMT_PUBLIC bytes (parsed strictly first) or an already parsed public area.
 *
 * @throws FleetkeyError TPM_PUBLIC_MALFORMED
 */
export function computeName(pub: Uint8Array | TpmPublic): Buffer {
  const parsed = pub instanceof Uint8Array ? parseTpmtPublic(pub) : pub;
  const hash = hashByName(parsed.nameAlg);
  const out = Buffer.alloc(2 + hash.size);
  out.writeUInt16BE(hash.id, 0);
  createHash(hash.node).update(parsed.tpmtPublic).digest().copy(out, 2);
  return out;
}

/**
 * Checks that `name` has the shape of an object Name: a known hash id then one digest of it.
 *
 * @throws FleetkeyError TPM_CREDENTIAL_INVALID
 */
export function assertNameShape(name: Uint8Array): void {
  if (name.length < 2) throw new FleetkeyError('TPM_CREDENTIAL_INVALID', { detail: 'name shorter than its algorithm id' });
  const id = (name[0]! << 8) | name[1]!;
  const hash = hashById(id);
  if (hash === undefined) throw new FleetkeyError('TPM_CREDENTIAL_INVALID', { detail: `name algorithm 0x${id.toString(16)} unsupported` });
  if (name.length !== 2 + hash.size) {
    throw new FleetkeyError('TPM_CREDENTIAL_INVALID', { detail: `name is ${name.length} bytes, ${hash.name} needs ${2 + hash.size}` });
  }
}
