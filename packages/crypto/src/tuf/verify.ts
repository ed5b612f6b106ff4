import { verify as nodeVerify, type KeyObject } from 'node:crypto';
import type { TufKey, TufSignature } from '@fleetkey/protocol';
import { canonicalBytes } from './canonical.js';
import { publicKeyOfTuf, tufKeyId } from './keys.js';

export interface RoleTrust {
  readonly keys: Readonly<Record<string, TufKey>>;
  readonly keyids: readonly string[];
  readonly threshold: number;
}

export interface ThresholdResult {
  readonly ok: boolean;
  /** The key ids whose signature verified (each counted once). */
  readonly validKeyIds: string[];
  /** Signatures by key ids the role does not trust. */
  readonly unknownKeyIds: string[];
}

const keyCache = new Map<string, KeyObject>();
function keyObject(keyid: string, key: TufKey): KeyObject {
  let k = keyCache.get(keyid);
  if (k === undefined) {
    k = publicKeyOfTuf(key);
    if (keyCache.size > 1024) keyCache.clear();
    keyCache.set(keyid, k);
  }
  return k;
}

/**
 * TUF 1.0 §5.3.4 / §5.4.3 / §5.5.3 / §5.6.3: the `signed` part verifies under at least
 * `threshold` DISTINCT keys of the role. A key id counts once however many signatures carry it,
 * and a key id must be the hash of the key it names (else one key could be listed twice under
 * two ids and counted twice).
 */
export function verifyThreshold(signed: unknown, signatures: readonly TufSignature[], trust: RoleTrust): ThresholdResult {
  const data = canonicalBytes(signed);
  const valid = new Set<string>();
  const unknown: string[] = [];
  for (const s of signatures) {
    const key = trust.keys[s.keyid];
    if (!trust.keyids.includes(s.keyid) || key === undefined) {
      unknown.push(s.keyid);
      continue;
    }
    if (valid.has(s.keyid) || tufKeyId(key) !== s.keyid) continue;
    let ok = false;
    try {
      const hash = key.keytype === 'ed25519' ? null : 'sha256';
      ok = nodeVerify(hash, data, keyObject(s.keyid, key), Buffer.from(s.sig, 'hex'));
    } catch {
      ok = false;
    }
    if (ok) valid.add(s.keyid);
  }
  return { ok: valid.size >= trust.threshold, validKeyIds: [...valid], unknownKeyIds: unknown };
}

/** TUF 1.0 §4.2 expires: "YYYY-MM-DDTHH:MM:SSZ" of an epoch-ms instant (seconds truncated). */
export function tufExpires(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}
