import type { Clock } from '../../context/clock.js';
import { iso } from '../../context/clock.js';
import type { OpContext } from '../../context/op-context.js';
import type { AuditInput, AuditLog } from '../audit/audit-log.js';

interface Window {
  readonly ctx: OpContext;
  readonly code: string;
  readonly start: number;
  count: number;
}

/**
 * Refusals at the edge of the operator API (no or bad credential, a role without the permission,
 * a request the schema refuses, a rate limit) are audited in aggregate, so no caller, holding a
 * token or not, can grow the append-only log faster than one row per (actor, code, window):
 * the first refusal of a window is written at once with its detail; the others are counted and
 * written as one `http.refusals` row with the count when the window closes. Refusals of a
 * mutation keep their own row (the unit of work writes it); those are bounded by the request
 * rate limits.
 */
export class RefusalAudit {
  readonly #windows = new Map<string, Window>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly windowMs = 60_000,
    private readonly maxKeys = 10_000,
  ) {}

  /** Flushes closed windows on a timer, so a count is written even if the actor goes quiet. */
  start(): void {
    this.#timer ??= setInterval(() => void this.flush(false).catch(() => undefined), Math.min(this.windowMs, 60_000));
    this.#timer.unref();
  }

  async record(ctx: OpContext, input: AuditInput): Promise<void> {
    await this.flush(false);
    const code = input.code ?? 'refused';
    const key = `${ctx.actor.label}\n${code}`;
    const w = this.#windows.get(key);
    if (w !== undefined) {
      w.count += 1;
      return;
    }
    // A flood of distinct actors (addresses) closes every window early rather than growing the table.
    if (this.#windows.size >= this.maxKeys) await this.flush(true);
    this.#windows.set(key, { ctx: { ...ctx, requestId: null }, code, start: this.clock.now(), count: 0 });
    await this.audit.record(ctx, input);
  }

  /** Writes the count of every window that has closed (or of all of them). */
  async flush(all: boolean): Promise<void> {
    const now = this.clock.now();
    for (const [key, w] of this.#windows) {
      if (!all && now - w.start < this.windowMs) continue;
      this.#windows.delete(key);
      if (w.count === 0) continue;
      await this.audit.record(w.ctx, {
        action: 'http.refusals',
        outcome: 'refused',
        code: w.code,
        detail: { count: w.count, from: iso(w.start), to: iso(now) },
      });
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush(true);
  }
}
