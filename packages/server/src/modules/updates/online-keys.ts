import { createPrivateKey, type KeyObject } from 'node:crypto';
import { metadataDocument, generateTufKeyPair, softwareTufSigner, type TufSigner } from '@fleetkey/crypto';
import type { TufKey } from '@fleetkey/protocol';
import type { Clock } from '../../context/clock.js';
import type { SecretBox } from '../../secrets/secret-box.js';
import type { Store } from '../../store/open-store.js';
import type { TufOnlineKeyRow } from '../../store/schema.js';

export type RepoName = 'image' | 'director';
export type OnlineRole = 'targets' | 'snapshot' | 'timestamp';

/** Which roles sign online: the image repository's snapshot and timestamp; all of the director but its root (Uptane). */
export const ONLINE_ROLES: Readonly<Record<RepoName, readonly OnlineRole[]>> = {
  image: ['snapshot', 'timestamp'],
  director: ['targets', 'snapshot', 'timestamp'],
};

export interface OnlineKey {
  readonly keyId: string;
  readonly key: TufKey;
  readonly signer: TufSigner;
}

const aad = (keyId: string) => `tuf-online-key:${keyId}`;

/**
 * The online TUF keys: ed25519, generated from the CSPRNG on first start, the private half sealed
 * under the master key (AES-256-GCM, bound to its key id) in tuf_online_keys and opened once per
 * start into a cached KeyObject. The offline root lists their public halves (TUF 1.0 §6.1:
 * timestamp and snapshot keys are online so metadata can be re-signed before it expires).
 */
export class OnlineKeys {
  readonly #keys = new Map<string, OnlineKey>();

  private constructor() {}

  static async load(store: Store, box: SecretBox, clock: Clock): Promise<OnlineKeys> {
    const out = new OnlineKeys();
    for (const repo of ['image', 'director'] as const) {
      for (const role of ONLINE_ROLES[repo]) {
        let row = await current(store, repo, role);
        if (row === undefined) {
          const { privateKey } = generateTufKeyPair('ed25519');
          const signer = softwareTufSigner(privateKey);
          const der = privateKey.export({ format: 'der', type: 'pkcs8' });
          const candidate: TufOnlineKeyRow = {
            key_id: signer.keyId,
            repo,
            role,
            public_key: metadataDocument(signer.key),
            sealed_private: box.seal(der, aad(signer.keyId)),
            created_at: clock.now(),
            retired_at: null,
          };
          der.fill(0);
          // Two nodes starting together: one insert wins and both use the row that won.
          await store.db.insertInto('tuf_online_keys').values(candidate).onConflict((oc) => oc.column('key_id').doNothing()).execute();
          row = await current(store, repo, role);
          if (row === undefined) throw new Error(`online key ${repo}/${role} was not stored`);
        }
        const der = box.open(row.sealed_private, aad(row.key_id));
        let privateKey: KeyObject;
        try {
          privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
        } finally {
          der.fill(0);
        }
        const signer = softwareTufSigner(privateKey);
        if (signer.keyId !== row.key_id) throw new Error(`online key ${row.key_id} does not match its sealed private key`);
        out.#keys.set(`${repo}/${role}`, { keyId: row.key_id, key: signer.key, signer });
      }
    }
    return out;
  }

  get(repo: RepoName, role: OnlineRole): OnlineKey {
    const k = this.#keys.get(`${repo}/${role}`);
    if (k === undefined) throw new Error(`no online key for ${repo}/${role}`);
    return k;
  }

  /** The public keys an offline root must list, by repository and role. */
  publicKeys(): Record<RepoName, Partial<Record<OnlineRole, { keyid: string; key: TufKey }>>> {
    const out: Record<RepoName, Partial<Record<OnlineRole, { keyid: string; key: TufKey }>>> = { image: {}, director: {} };
    for (const repo of ['image', 'director'] as const) for (const role of ONLINE_ROLES[repo]) out[repo][role] = { keyid: this.get(repo, role).keyId, key: this.get(repo, role).key };
    return out;
  }
}

async function current(store: Store, repo: RepoName, role: OnlineRole): Promise<TufOnlineKeyRow | undefined> {
  return store.db.selectFrom('tuf_online_keys').selectAll().where('repo', '=', repo).where('role', '=', role).where('retired_at', 'is', null).orderBy('created_at', 'desc').executeTakeFirst();
}
