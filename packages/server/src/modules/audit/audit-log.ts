import { createHash } from 'node:crypto';
import type { AuditEntry, AuditVerifyResult } from '@fleetkey/protocol';
import type { Clock } from '../../context/clock.js';
import { iso } from '../../context/clock.js';
import type { OpContext } from '../../context/op-context.js';
import type { Store, Tx } from '../../store/open-store.js';
import type { AuditRow } from '../../store/schema.js';
import { canonicalJson } from './canonical-json.js';
import { redactSecrets } from './redact.js';

export type AuditOutcome = 'success' | 'refused' | 'error';

export interface AuditInput {
  readonly action: string;
  readonly subject?: string | null;
  readonly outcome: AuditOutcome;
  readonly code?: string | null;
  readonly detail?: Record<string, unknown>;
}

const GENESIS = '0'.repeat(64);

type Hashed = Omit<AuditRow, 'prev_hash' | 'hash'>;

function entryHash(prevHash: string, row: Hashed): string {
  // The hash covers every column a reader relies on; `prev_hash` links it to the entry before.
  const body = canonicalJson({
    seq: row.seq,
    at: row.at,
    actor: row.actor,
    action: row.action,
    subject: row.subject,
    outcome: row.outcome,
    code: row.code,
    requestId: row.request_id,
    detail: row.detail,
  });
  return createHash('sha256').update(prevHash).update('\n').update(body).digest('hex');
}

/**
 * The hash-chained audit log. `append` runs inside the caller's transaction, so an entry exists
 * exactly when the change it describes does.
 */
export class AuditLog {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async append(tx: Tx, ctx: OpContext, input: AuditInput): Promise<void> {
    await this.appendMany(tx, ctx, [input]);
  }

  /** Entries in order, chained to each other, with one read and one write of the chain head. */
  async appendMany(tx: Tx, ctx: OpContext, inputs: readonly AuditInput[]): Promise<void> {
    if (inputs.length === 0) return;
    // Lock the chain head for the rest of the transaction (PostgreSQL); SQLite's single writer
    // already serialises. Appending last in a transaction keeps the lock short and deadlock-free.
    let q = tx.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1);
    if (this.store.dialect === 'postgres') q = q.forUpdate();
    const head = await q.executeTakeFirstOrThrow();
    let { seq, hash } = head;
    const at = this.clock.now();
    const rows: AuditRow[] = [];
    for (const input of inputs) {
      const row: Hashed = {
        seq: seq + 1,
        at,
        actor: ctx.actor.label,
        action: input.action,
        subject: input.subject ?? null,
        outcome: input.outcome,
        code: input.code ?? null,
        request_id: ctx.requestId,
        detail: input.detail === undefined ? null : canonicalJson(redactSecrets(input.detail)),
      };
      const next = entryHash(hash, row);
      rows.push({ ...row, prev_hash: hash, hash: next });
      seq = row.seq;
      hash = next;
    }
    // 11 columns a row: chunks stay far below SQLite's bound-parameter limit.
    for (let i = 0; i < rows.length; i += 500) await tx.insertInto('audit_log').values(rows.slice(i, i + 500)).execute();
    await tx.updateTable('audit_head').set({ seq, hash }).where('id', '=', 1).execute();
  }

  /** Appends in a transaction of its own: for refusals, whose change was rolled back. */
  async record(ctx: OpContext, input: AuditInput): Promise<void> {
    await this.store.transaction((tx) => this.append(tx, ctx, input));
  }

  async list(filter: { subject?: string; action?: string; after?: number; limit?: number }): Promise<AuditEntry[]> {
    let q = this.store.db.selectFrom('audit_log').selectAll().orderBy('seq', 'asc');
    if (filter.subject !== undefined) q = q.where('subject', '=', filter.subject);
    if (filter.action !== undefined) q = q.where('action', '=', filter.action);
    if (filter.after !== undefined) q = q.where('seq', '>', filter.after);
    const rows = await q.limit(filter.limit ?? 100).execute();
    return rows.map((r) => ({
      seq: r.seq,
      at: iso(r.at),
      actor: r.actor,
      action: r.action,
      subject: r.subject,
      outcome: r.outcome,
      code: r.code,
      requestId: r.request_id,
      detail: r.detail === null ? null : (JSON.parse(r.detail) as Record<string, unknown>),
      hash: r.hash,
    }));
  }

  /**
   * Walks the whole chain in order and names the first entry whose link or hash does not hold:
   * an edited row, a deleted row (gap in seq), a reordered row, or a head that disagrees.
   */
  async verify(): Promise<AuditVerifyResult> {
    const page = 2000;
    let prevHash = GENESIS;
    let expectedSeq = 1;
    let count = 0;
    for (;;) {
      const rows = await this.store.db
        .selectFrom('audit_log')
        .selectAll()
        .where('seq', '>=', expectedSeq)
        .orderBy('seq', 'asc')
        .limit(page)
        .execute();
      for (const r of rows) {
        const broken = (reason: string): AuditVerifyResult => ({ ok: false, entries: count, firstBrokenSeq: r.seq, reason });
        if (r.seq !== expectedSeq) return { ok: false, entries: count, firstBrokenSeq: expectedSeq, reason: 'entry missing' };
        if (r.prev_hash !== prevHash) return broken('link to previous entry does not match');
        if (entryHash(prevHash, r) !== r.hash) return broken('entry content does not match its hash');
        prevHash = r.hash;
        expectedSeq += 1;
        count += 1;
      }
      if (rows.length < page) break;
    }
    const head = await this.store.db.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirstOrThrow();
    if (head.seq !== count || head.hash !== prevHash) {
      // Entries were cut off the end: the head still remembers the longer chain.
      return { ok: false, entries: count, firstBrokenSeq: count + 1, reason: 'log is shorter than its recorded head' };
    }
    return { ok: true, entries: count, firstBrokenSeq: null, reason: null };
  }
}
