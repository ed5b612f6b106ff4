import { TUF_SPEC_VERSION, type RootSigned, type TufKey } from '@fleetkey/protocol';
import { tufKeyId } from './keys.js';
import { tufExpires } from './verify.js';

export interface RoleSpec {
  readonly keys: readonly TufKey[];
  readonly threshold: number;
}

/**
 * The `signed` part of a root (TUF 1.0 §4.3): every role's keys listed in `keys` under their key
 * ids, consistent snapshots on. The offline tools build it; the server only verifies.
 */
export function buildRoot(o: { version: number; expiresAt: number; root: RoleSpec; targets: RoleSpec; snapshot: RoleSpec; timestamp: RoleSpec }): RootSigned {
  const keys: Record<string, TufKey> = {};
  const role = (r: RoleSpec) => {
    const keyids = r.keys.map((k) => {
      const id = tufKeyId(k);
      keys[id] = k;
      return id;
    });
    return { keyids, threshold: r.threshold };
  };
  const roles = { root: role(o.root), targets: role(o.targets), snapshot: role(o.snapshot), timestamp: role(o.timestamp) };
  return { _type: 'root', spec_version: TUF_SPEC_VERSION, version: o.version, expires: tufExpires(o.expiresAt), consistent_snapshot: true, keys, roles };
}
