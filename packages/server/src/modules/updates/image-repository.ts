import { metadataDocument, signMetadata, tufExpires, tufKeyId, verifyThreshold, type RoleTrust } from '@fleetkey/crypto';
import {
  FleetkeyError,
  TUF_SPEC_VERSION,
  type RootMetadata,
  type RootSigned,
  type SnapshotSigned,
  type TargetsMetadata,
  type TargetsSigned,
  type TimestampSigned,
} from '@fleetkey/protocol';
import type { OpContext } from '../../context/op-context.js';
import type { UnitOfWork, Work } from '../../context/unit-of-work.js';
import type { Tx } from '../../store/open-store.js';
import type { ArtifactStore } from './artifact-store.js';
import { ONLINE_ROLES, type OnlineKeys, type RepoName } from './online-keys.js';
import type { TufStore } from './tuf-store.js';

export interface Lifetimes {
  /** Image timestamp (short: a frozen repository is noticed within it, TUF 1.0 §5.4.4 freeze). */
  readonly timestampMs: number;
  readonly snapshotMs: number;
  /** Director per-device documents (Uptane: short). */
  readonly directorMs: number;
}

export const DEFAULT_LIFETIMES: Lifetimes = { timestampMs: 24 * 3_600_000, snapshotMs: 7 * 24 * 3_600_000, directorMs: 24 * 3_600_000 };

const parseExpires = (s: string): number => Date.parse(s);

/** The trust a root gives one role. */
export function roleTrust(root: RootSigned, role: keyof RootSigned['roles']): RoleTrust {
  return { keys: root.keys, keyids: root.roles[role].keyids, threshold: root.roles[role].threshold };
}

/**
 * The TUF 1.0 image repository (and the director's root): roots submitted signed offline,
 * targets submitted signed by the customer's key, snapshot and timestamp signed here with
 * online keys. Every check happens before anything is stored; a refusal changes nothing.
 */
export class ImageRepository {
  constructor(
    private readonly uow: UnitOfWork,
    private readonly tuf: TufStore,
    private readonly keys: OnlineKeys,
    private readonly artifacts: ArtifactStore,
    private readonly lifetimes: Lifetimes,
  ) {}

  async currentRoot(db: Tx | TufStore['store']['db'], repo: RepoName): Promise<RootSigned | null> {
    const row = await this.tuf.latest(db, repo, 'root');
    return row === undefined ? null : (JSON.parse(row.body) as RootMetadata).signed;
  }

  /**
   * A new root version (TUF 1.0 §5.3.4-5.3.5): version N+1 exactly, signed by a threshold of the
   * CURRENT root's root keys and by a threshold of its OWN root keys (v1: its own only). The
   * online roles must list exactly this server's online keys, else nothing could be re-signed.
   */
  async submitRoot(ctx: OpContext, repo: RepoName, doc: RootMetadata): Promise<{ version: number }> {
    return this.uow.run(ctx, { action: 'updates.root.submit', subject: `tuf:${repo}/root` }, async (w) => {
      const s = doc.signed;
      for (const [keyid, key] of Object.entries(s.keys)) {
        if (tufKeyId(key) !== keyid) throw new FleetkeyError('REPO_METADATA_INVALID', { detail: `key id ${keyid} is not the sha256 of its key` });
      }
      for (const [role, r] of Object.entries(s.roles)) {
        if (r.threshold > r.keyids.length) throw new FleetkeyError('REPO_METADATA_INVALID', { detail: `${role} threshold ${r.threshold} above its ${r.keyids.length} keys` });
        for (const k of r.keyids) if (s.keys[k] === undefined) throw new FleetkeyError('REPO_METADATA_INVALID', { detail: `${role} lists unknown key ${k}` });
      }
      for (const role of ONLINE_ROLES[repo]) {
        const mine = this.keys.get(repo, role).keyId;
        const r = s.roles[role];
        if (r.keyids.length !== 1 || r.keyids[0] !== mine || r.threshold !== 1) {
          throw new FleetkeyError('REPO_METADATA_INVALID', { detail: `${role} must be this server's online key ${mine} with threshold 1` });
        }
      }
      if (parseExpires(s.expires) <= w.now) throw new FleetkeyError('REPO_METADATA_EXPIRED', { detail: s.expires });
      const current = await this.currentRoot(w.tx, repo);
      const expected = (current?.version ?? 0) + 1;
      if (s.version < expected) throw new FleetkeyError('REPO_VERSION_ROLLBACK', { detail: `root version ${s.version}, current ${expected - 1}` });
      if (s.version > expected) throw new FleetkeyError('REPO_METADATA_INVALID', { detail: `root version ${s.version} skips ${expected}` });
      // TUF 1.0 §5.3.4: signed by a threshold of the trusted (old) root's root keys...
      if (current !== null) {
        const old = verifyThreshold(s, doc.signatures, roleTrust(current, 'root'));
        if (!old.ok) throw new FleetkeyError('REPO_SIGNATURE_THRESHOLD', { detail: `old root keys: ${old.validKeyIds.length} of ${current.roles.root.threshold}` });
      }
      // ... and §5.3.5: by a threshold of the new root's own root keys.
      const own = verifyThreshold(s, doc.signatures, roleTrust(s, 'root'));
      if (!own.ok) throw new FleetkeyError('REPO_SIGNATURE_THRESHOLD', { detail: `new root keys: ${own.validKeyIds.length} of ${s.roles.root.threshold}` });
      await this.tuf.insert(w.tx, { repo, role: 'root', version: s.version, body: metadataDocument(doc), expires_at: parseExpires(s.expires), created_at: w.now });
      w.note({ version: s.version, signedBy: own.validKeyIds });
      await w.emit('updates.root_rotated', `tuf:${repo}/root`, { repo, version: s.version });
      // §5.3.11: a rotation may change the snapshot/timestamp keys; fresh ones are signed now.
      if (repo === 'image' && (await this.tuf.latest(w.tx, 'image', 'targets')) !== undefined) await this.resignInWork(w);
      return { version: s.version };
    });
  }

  /**
   * New targets metadata signed outside Fleetkey (TUF 1.0 §5.6.3: threshold of the root's
   * targets keys; §5.6.4: no rollback of its version), whose every target is stored with the
   * same length and hash. Then snapshot and timestamp are re-signed.
   */
  async submitTargetsInWork(w: Work, doc: TargetsMetadata): Promise<{ signedBy: string[] }> {
    const root = await this.currentRoot(w.tx, 'image');
    if (root === null) throw new FleetkeyError('REPO_NOT_INITIALISED');
    const s = doc.signed;
    const t = verifyThreshold(s, doc.signatures, roleTrust(root, 'targets'));
    if (!t.ok) {
      throw new FleetkeyError('REPO_SIGNATURE_THRESHOLD', {
        detail: `targets: ${t.validKeyIds.length} valid of ${root.roles.targets.threshold}${t.unknownKeyIds.length > 0 ? `; unknown keys ${t.unknownKeyIds.join(',')}` : ''}`,
      });
    }
    const cur = await this.tuf.latest(w.tx, 'image', 'targets');
    if (cur !== undefined && s.version <= cur.version) throw new FleetkeyError('REPO_VERSION_ROLLBACK', { detail: `targets version ${s.version}, current ${cur.version}` });
    if (parseExpires(s.expires) <= w.now) throw new FleetkeyError('REPO_METADATA_EXPIRED', { detail: s.expires });
    for (const [name, f] of Object.entries(s.targets)) {
      const size = await this.artifacts.size(f.hashes.sha256);
      if (size !== f.length) throw new FleetkeyError('REPO_ARTIFACT_MISSING', { detail: `${name}: ${f.hashes.sha256} (${f.length} bytes) ${size === null ? 'not stored' : `stored with ${size} bytes`}` });
    }
    await this.tuf.insert(w.tx, { repo: 'image', role: 'targets', version: s.version, body: metadataDocument(doc), expires_at: parseExpires(s.expires), created_at: w.now });
    await w.emit('updates.targets_published', 'tuf:image/targets', { version: s.version, targets: Object.keys(s.targets).length, signedBy: t.validKeyIds });
    await this.resignInWork(w);
    return { signedBy: t.validKeyIds };
  }

  async submitTargets(ctx: OpContext, doc: TargetsMetadata): Promise<{ version: number }> {
    return this.uow.run(ctx, { action: 'updates.targets.submit', subject: 'tuf:image/targets' }, async (w) => {
      const r = await this.submitTargetsInWork(w, doc);
      w.note({ version: doc.signed.version, signedBy: r.signedBy });
      return { version: doc.signed.version };
    });
  }

  /** The current signed targets document (what a new draft starts from). */
  async currentTargets(): Promise<TargetsMetadata | null> {
    const row = await this.tuf.latest(this.tuf.store.db, 'image', 'targets');
    return row === undefined ? null : (JSON.parse(row.body) as TargetsMetadata);
  }

  /** Draft targets: the current targets plus one, version + 1, unsigned (signed offline). */
  async draftTargets(add: Record<string, TargetsSigned['targets'][string]>, expiresAt: number): Promise<TargetsSigned> {
    const cur = await this.currentTargets();
    return {
      _type: 'targets',
      spec_version: TUF_SPEC_VERSION,
      version: (cur?.signed.version ?? 0) + 1,
      expires: tufExpires(expiresAt),
      targets: { ...(cur?.signed.targets ?? {}), ...add },
    };
  }

  /** Re-signs snapshot (when targets moved) and timestamp; TUF 1.0 §5.4-5.5. */
  async resignInWork(w: Work): Promise<void> {
    const targets = await this.tuf.latest(w.tx, 'image', 'targets');
    if (targets === undefined) return;
    const snap = await this.tuf.latest(w.tx, 'image', 'snapshot');
    let snapVersion = snap?.version ?? 0;
    const listed = snap === undefined ? undefined : (JSON.parse(snap.body) as { signed: SnapshotSigned }).signed.meta['targets.json']?.version;
    if (snap === undefined || listed !== targets.version || snap.expires_at - w.now < this.lifetimes.snapshotMs / 2) {
      snapVersion += 1;
      const signed: SnapshotSigned = {
        _type: 'snapshot',
        spec_version: TUF_SPEC_VERSION,
        version: snapVersion,
        expires: tufExpires(w.now + this.lifetimes.snapshotMs),
        meta: { 'targets.json': { version: targets.version } },
      };
      const doc = await signMetadata(signed, [this.keys.get('image', 'snapshot').signer]);
      await this.tuf.insert(w.tx, { repo: 'image', role: 'snapshot', version: snapVersion, body: metadataDocument(doc), expires_at: parseExpires(signed.expires), created_at: w.now });
    }
    const ts = await this.tuf.latest(w.tx, 'image', 'timestamp');
    const tsSigned: TimestampSigned = {
      _type: 'timestamp',
      spec_version: TUF_SPEC_VERSION,
      version: (ts?.version ?? 0) + 1,
      expires: tufExpires(w.now + this.lifetimes.timestampMs),
      meta: { 'snapshot.json': { version: snapVersion } },
    };
    const doc = await signMetadata(tsSigned, [this.keys.get('image', 'timestamp').signer]);
    await this.tuf.insert(w.tx, { repo: 'image', role: 'timestamp', version: tsSigned.version, body: metadataDocument(doc), expires_at: parseExpires(tsSigned.expires), created_at: w.now });
  }

  /** Re-signs the timestamp (and snapshot) when less than half their lifetime is left. */
  async refreshIfDue(ctx: OpContext, now: number): Promise<boolean> {
    const ts = await this.tuf.latest(this.tuf.store.db, 'image', 'timestamp');
    const snap = await this.tuf.latest(this.tuf.store.db, 'image', 'snapshot');
    if (ts === undefined) return false;
    const due = ts.expires_at - now < this.lifetimes.timestampMs / 2 || (snap !== undefined && snap.expires_at - now < this.lifetimes.snapshotMs / 2);
    if (!due) return false;
    await this.uow.run(ctx, { action: 'updates.timestamp.resign', subject: 'tuf:image/timestamp' }, (w) => this.resignInWork(w));
    return true;
  }
}
