import { createHash, createHmac } from 'node:crypto';
import { hashByName, type TpmHashName } from './constants.js';

function label0(label: string): Buffer {
  // Part 1 §11.4.10.1: a label not already ending in 0x00 gets one, and the 0x00 is hashed.
  const l = Buffer.from(label, 'latin1');
  return l.length > 0 && l[l.length - 1] === 0 ? l : Buffer.concat([l, Buffer.alloc(1)]);
}

function bitsTail(out: Buffer, bits: number): Buffer {
  const bytes = Math.ceil(bits / 8);
  const res = Buffer.from(out.subarray(0, bytes));
  // Part 1 §11.4.10.2: for a bit count that is not a multiple of 8, the excess high bits of the
  // first octet are cleared.
  if (bits % 8 !== 0) res[0] = (res[0] ?? 0) & (0xff >> (8 - (bits % 8)));
  return res;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/**
 * KDFa (TPM 2.0 Part 1 §11.4.10.2): SP 800-108 counter-mode KDF with HMAC,
 * K(i) = HMAC(key, [i]32 || Label || 0x00 || contextU || contextV || [bits]32).
 */
export function kdfa(hash: TpmHashName, key: Uint8Array, label: string, contextU: Uint8Array, contextV: Uint8Array, bits: number): Buffer {
  const h = hashByName(hash);
  const fixed = Buffer.concat([label0(label), contextU, contextV, u32(bits)]);
  const blocks: Buffer[] = [];
  for (let i = 1, have = 0; have * 8 < bits; i++, have += h.size) {
    blocks.push(createHmac(h.node, key).update(u32(i)).update(fixed).digest());
  }
  return bitsTail(Buffer.concat(blocks), bits);
}

/**
 * KDFe (TPM 2.0 Part 1 §11.4.10.3): the SP 800-56A concatenation KDF,
 * K(i) = H([i]32 || Z || Label || 0x00 || partyUInfo || partyVInfo).
 */
export function kdfe(hash: TpmHashName, z: Uint8Array, label: string, partyUInfo: Uint8Array, partyVInfo: Uint8Array, bits: number): Buffer {
  const h = hashByName(hash);
  const other = Buffer.concat([label0(label), partyUInfo, partyVInfo]);
  const blocks: Buffer[] = [];
  for (let i = 1, have = 0; have * 8 < bits; i++, have += h.size) {
    blocks.push(createHash(h.node).update(u32(i)).update(z).update(other).digest());
  }
  return bitsTail(Buffer.concat(blocks), bits);
}
