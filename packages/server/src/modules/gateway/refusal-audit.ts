/**
 * Gateway refusals of an authenticated device, audited in aggregate: one audit row per device,
 * refusal code and window, carrying how many refusals the window saw. A device that reconnects
 * and floods in a loop is refused thousands of times; each refusal is a fact worth keeping, a row
 * per refused packet is not (the append-only log would grow at the attacker's pace).
 *
 * A window opens at the first refusal of its (subject, code) and its row is written when it
 * closes, in its own transaction; close() writes the open windows. Memory is bounded: beyond
 * maxKeys open windows, further refusals are counted in one overflow window.
 */
import type { RefusalInfo } from './types.js';

export interface AggregatedRefusal {
  subject: string;
  code: string;
  count: number;
  windowStart: number;
  /** windowStart + the window length: every refusal counted happened in [windowStart, windowEnd). */
  windowEnd: number;
  lastAt: number;
  /** The first refusal's detail and source: what the operator reads. */
  firstDetail: string;
  source: string;
}

interface Window {
  row: AggregatedRefusal;
  timer: NodeJS.Timeout;
}

const OVERFLOW_SUBJECT = 'gateway:refusal-overflow';

export class RefusalAggregator {
  readonly #open = new Map<string, Window>();
  readonly #writes = new Set<Promise<void>>();

  constructor(
    private readonly write: (row: AggregatedRefusal) => Promise<void>,
    private readonly onError: (err: unknown) => void,
    private readonly windowMs: number,
    private readonly maxKeys = 10_000,
  ) {}

  add(info: RefusalInfo & { deviceId: string }, now: number): void {
    let subject = `device:${info.deviceId}`;
    let key = `${subject}\u0000${info.reason}`;
    if (!this.#open.has(key) && this.#open.size >= this.maxKeys) {
      subject = OVERFLOW_SUBJECT;
      key = `${subject}\u0000${info.reason}`;
    }
    const open = this.#open.get(key);
    if (open !== undefined) {
      open.row.count++;
      open.row.lastAt = now;
      return;
    }
    const row: AggregatedRefusal = { subject, code: info.reason, count: 1, windowStart: now, windowEnd: now + this.windowMs, lastAt: now, firstDetail: info.detail, source: info.remoteAddress };
    const timer = setTimeout(() => this.#close(key), this.windowMs);
    timer.unref();
    this.#open.set(key, { row, timer });
  }

  #close(key: string): void {
    const w = this.#open.get(key);
    if (w === undefined) return;
    this.#open.delete(key);
    clearTimeout(w.timer);
    const p = this.write(w.row).catch(this.onError);
    this.#writes.add(p);
    void p.finally(() => this.#writes.delete(p));
  }

  /** Writes every open window now and waits for all writes. */
  async close(): Promise<void> {
    for (const key of [...this.#open.keys()]) this.#close(key);
    await Promise.all([...this.#writes]);
  }
}
