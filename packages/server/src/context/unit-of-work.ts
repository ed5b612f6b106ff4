import { FleetkeyError, type EventType } from '@fleetkey/protocol';
import type { AuditLog } from '../modules/audit/audit-log.js';
import type { EventBus, FleetEvent } from '../modules/events/event-bus.js';
import type { AuditInput } from '../modules/audit/audit-log.js';
import { writeEvents, type NewEvent } from '../modules/events/outbox.js';
import type { Store, Tx } from '../store/open-store.js';
import type { Clock } from './clock.js';
import type { OpContext } from './op-context.js';

export interface Work {
  readonly tx: Tx;
  readonly ctx: OpContext;
  /** The transaction's "now": every row it writes carries the same instant. */
  readonly now: number;
  /**
   * The clock read at the call, never before `now`: for an instant that must be taken once the
   * work holds its locks (a binding's boundary), since `now` was read before it waited for them.
   */
  readClock(): number;
  emit(type: EventType, subject: string, payload: Record<string, unknown>): Promise<void>;
  /** Adds to the success audit entry's detail (never a secret). */
  note(detail: Record<string, unknown>): void;
  /** Sets the audit subject when it is only known inside the work (a minted id). */
  subject(subject: string): void;
  /**
   * What must outlast a refusal of this work: written with the refusal's audit entry, in the
   * transaction that records it (a challenge used up by a wrong proof; a takeover attempt's
   * event and detail). Only `run` honours it.
   */
  keepIfRefused(kept: Kept): void;
}

export interface Kept {
  readonly apply?: (tx: Tx) => Promise<unknown>;
  readonly events?: readonly NewEvent[];
  /** Merged into the refusal's audit detail (never a secret). */
  readonly detail?: Record<string, unknown>;
}

/** Refusals already written to the audit log by a unit of work (the HTTP layer skips them). */
export const auditedErrors = new WeakSet<object>();

export interface Operation {
  readonly action: string;
  readonly subject?: string;
}

/**
 * The only way a mutation runs: one transaction holding the change, its audit entry and its
 * outbox events. A refusal (FleetkeyError) rolls the change back and is then audited on its
 * own, so a refused request changes nothing but still leaves a trace. Events reach in-process
 * listeners only after commit.
 */
export class UnitOfWork {
  constructor(
    private readonly store: Store,
    private readonly audit: AuditLog,
    private readonly bus: EventBus,
    private readonly clock: Clock,
  ) {}

  async run<T>(ctx: OpContext, op: Operation, fn: (w: Work) => Promise<T>): Promise<T> {
    let emitted: FleetEvent[] = [];
    // Kept outside the transaction: a refusal is audited under the subject the work had set,
    // with what the work asked to keep.
    const at: Outcome = { subject: op.subject ?? null, kept: [] };
    try {
      const result = await this.store.transaction(async (tx) => {
        const b = new Batch(tx, ctx, this.clock);
        const value = await b.step(op, fn, at);
        emitted = await b.finish(this.audit);
        return value;
      });
      for (const e of emitted) this.bus.publish(e);
      return result;
    } catch (caught) {
      const e = lockConflict(caught) ?? caught;
      if (e instanceof FleetkeyError) {
        const entry: AuditInput = {
          action: op.action,
          subject: at.subject,
          outcome: 'refused',
          code: e.code,
          detail: Object.assign({}, ...at.kept.map((k) => k.detail ?? {}), e.detail === undefined ? {} : { reason: e.detail }) as Record<string, unknown>,
        };
        if (at.kept.length === 0) await this.audit.record(ctx, entry);
        else await this.recordKept(ctx, entry, at.kept);
        auditedErrors.add(e);
      }
      throw e;
    }
  }

  private async recordKept(ctx: OpContext, entry: AuditInput, kept: readonly Kept[]): Promise<void> {
    const emitted = await this.store.transaction(async (tx) => {
      for (const k of kept) await k.apply?.(tx);
      const events = await writeEvents(tx, this.clock.now(), kept.flatMap((k) => k.events ?? []));
      await this.audit.append(tx, ctx, entry);
      return events;
    });
    for (const e of emitted) this.bus.publish(e);
  }

  /**
   * Several operations of one actor in one transaction, each with its own audit entry and events:
   * for high-rate records (connects, disconnects) whose durable commit is worth sharing. All
   * commit or none does; a failure is thrown to the caller, which may retry them one by one.
   */
  async runBatch(ctx: OpContext, ops: ReadonlyArray<{ readonly op: Operation; readonly fn: (w: Work) => Promise<void> }>): Promise<void> {
    const emitted = await this.store.transaction(async (tx) => {
      const b = new Batch(tx, ctx, this.clock);
      for (const { op, fn } of ops) await b.step(op, fn, { subject: op.subject ?? null, kept: [] });
      return b.finish(this.audit);
    });
    for (const e of emitted) this.bus.publish(e);
  }
}

/**
 * PostgreSQL aborts one of two transactions that wait for each other's row locks (SQLSTATE 40P01,
 * e.g. provisioning locks a device then a name while an operator binds that name to that device)
 * or that it cannot serialise (40001). The victim changed nothing: it is a refusal the caller may
 * retry, not a server error.
 */
function lockConflict(e: unknown): FleetkeyError | undefined {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  if (code !== '40P01' && code !== '40001') return undefined;
  return new FleetkeyError('CONFLICT', { detail: `transaction aborted by the database (${code})`, cause: e });
}

/** What a unit of work's refusal is audited with. */
interface Outcome {
  subject: string | null;
  readonly kept: Kept[];
}

/** One transaction's work: events and audit entries are written together when it finishes. */
class Batch {
  readonly #events: NewEvent[] = [];
  readonly #entries: AuditInput[] = [];
  private readonly now: number;

  constructor(
    private readonly tx: Tx,
    private readonly ctx: OpContext,
    private readonly clock: Clock,
  ) {
    this.now = clock.now();
  }

  async step<T>(op: Operation, fn: (w: Work) => Promise<T>, at: Outcome): Promise<T> {
    let detail: Record<string, unknown> = {};
    const work: Work = {
      tx: this.tx,
      ctx: this.ctx,
      now: this.now,
      readClock: () => Math.max(this.clock.now(), this.now),
      emit: (type, subject, payload) => {
        this.#events.push({ type, subject, payload });
        return Promise.resolve();
      },
      note: (d) => {
        detail = { ...detail, ...d };
      },
      subject: (s) => {
        at.subject = s;
      },
      keepIfRefused: (k) => {
        at.kept.push(k);
      },
    };
    const value = await fn(work);
    this.#entries.push({ action: op.action, subject: at.subject, outcome: 'success', detail });
    return value;
  }

  /** Audit last: on PostgreSQL it locks the chain head, which is best held briefly. */
  async finish(audit: AuditLog): Promise<FleetEvent[]> {
    const emitted = await writeEvents(this.tx, this.now, this.#events);
    await audit.appendMany(this.tx, this.ctx, this.#entries);
    return emitted;
  }
}
