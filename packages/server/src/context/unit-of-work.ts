import { FleetkeyError, type EventType } from '@fleetkey/protocol';
import type { AuditLog } from '../modules/audit/audit-log.js';
import type { EventBus, FleetEvent } from '../modules/events/event-bus.js';
import { writeEvent } from '../modules/events/outbox.js';
import type { Store, Tx } from '../store/open-store.js';
import type { Clock } from './clock.js';
import type { OpContext } from './op-context.js';

export interface Work {
  readonly tx: Tx;
  readonly ctx: OpContext;
  /** The transaction's "now": every row it writes carries the same instant. */
  readonly now: number;
  emit(type: EventType, subject: string, payload: Record<string, unknown>): Promise<void>;
  /** Adds to the success audit entry's detail (never a secret). */
  note(detail: Record<string, unknown>): void;
  /** Sets the audit subject when it is only known inside the work (a minted id). */
  subject(subject: string): void;
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
    const emitted: FleetEvent[] = [];
    let subject = op.subject ?? null;
    let detail: Record<string, unknown> = {};
    try {
      const result = await this.store.transaction(async (tx) => {
        const now = this.clock.now();
        const work: Work = {
          tx,
          ctx,
          now,
          emit: async (type, subj, payload) => {
            emitted.push(await writeEvent(tx, now, type, subj, payload));
          },
          note: (d) => {
            detail = { ...detail, ...d };
          },
          subject: (s) => {
            subject = s;
          },
        };
        const value = await fn(work);
        await this.audit.append(tx, ctx, { action: op.action, subject, outcome: 'success', detail });
        return value;
      });
      for (const e of emitted) this.bus.publish(e);
      return result;
    } catch (e) {
      if (e instanceof FleetkeyError) {
        await this.audit.record(ctx, {
          action: op.action,
          subject,
          outcome: 'refused',
          code: e.code,
          detail: { ...(e.detail === undefined ? {} : { reason: e.detail }) },
        });
        auditedErrors.add(e);
      }
      throw e;
    }
  }
}
