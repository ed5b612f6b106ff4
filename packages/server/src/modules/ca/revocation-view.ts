import type { Store } from '../../store/open-store.js';

export type CertAuthStatus = 'good' | 'revoked' | 'superseded';

export interface RevocationChange {
  readonly serial: string;
  readonly deviceId: string;
  readonly status: 'revoked' | 'superseded';
  /** For superseded certificates: when they stop authenticating. */
  readonly graceUntil: number | null;
  /** When the change was written in its transaction (epoch ms; metrics of the revocation cut). */
  readonly at?: number;
}

/**
 * The in-process view of every certificate that must not (or soon must not) authenticate. The
 * gateway asks it per connection in O(1) and subscribes to its changes to cut live sessions.
 * It is loaded from the store at start and fed only by committed changes, so it never runs
 * ahead of the database; other server nodes can rebuild it from the same change feed.
 */
export class RevocationView {
  readonly #revoked = new Map<string, string>(); // serial → device id
  readonly #superseded = new Map<string, { deviceId: string; graceUntil: number }>();
  readonly #listeners = new Set<(c: RevocationChange) => void>();

  async load(store: Store): Promise<void> {
    const rows = await store.db
      .selectFrom('certificates')
      .select(['serial', 'device_id', 'status', 'grace_until'])
      .where('status', 'in', ['revoked', 'superseded'])
      .execute();
    for (const r of rows) {
      if (r.status === 'revoked') this.#revoked.set(r.serial, r.device_id);
      else this.#superseded.set(r.serial, { deviceId: r.device_id, graceUntil: r.grace_until ?? 0 });
    }
  }

  /** O(1): may a certificate with this serial authenticate at `now`? */
  status(serial: string, now: number): CertAuthStatus {
    if (this.#revoked.has(serial)) return 'revoked';
    const s = this.#superseded.get(serial);
    if (s !== undefined && now >= s.graceUntil) return 'superseded';
    return 'good';
  }

  isRevoked(serial: string): boolean {
    return this.#revoked.has(serial);
  }

  get revokedCount(): number {
    return this.#revoked.size;
  }

  apply(change: RevocationChange): void {
    if (change.status === 'revoked') {
      this.#superseded.delete(change.serial);
      this.#revoked.set(change.serial, change.deviceId);
    } else {
      this.#superseded.set(change.serial, { deviceId: change.deviceId, graceUntil: change.graceUntil ?? 0 });
    }
    for (const l of this.#listeners) l(change);
  }

  subscribe(listener: (c: RevocationChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
