import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { StoredMessage } from '../telemetry/ingest.js';
import type { ClusterBus } from './cluster-bus.js';

/** NATS subject tokens may not hold '.', '*', '>' or whitespace: anything else is hex-escaped. */
export function subjectToken(s: string): string {
  return s.replace(/[^A-Za-z0-9_-]/g, (c) => `~${c.codePointAt(0)!.toString(16)}~`);
}

/** `<root>.<kind>.<name>.<deviceId>`: consumers filter `<root>.*.<name>.*` (per name) or `<root>.*.*.<id>` (per device). */
export function dataSubject(root: string, m: Pick<StoredMessage, 'kind' | 'name' | 'deviceId'>): string {
  return `${root}.${m.kind}.${m.name === null ? '_' : subjectToken(m.name)}.${m.deviceId}`;
}

/**
 * Every stored diagnostics/telemetry message also goes to the JetStream stream, stamped with the
 * device id and the name bound at receive time (what the store recorded, never what the payload
 * claims). Published only after the store committed it; a publish that fails (NATS down, no ack
 * within 5 s) is retried with the same msgId, so the stream holds it at least once and JetStream's
 * duplicate window drops the retries that did land. The retry queue is bounded (oldest dropped,
 * counted) and in memory: a node killed with messages queued loses their export, not their storage
 * (docs/cluster.md says so).
 */
export class TelemetryOut {
  readonly #queue: { subject: string; data: Uint8Array; msgId: string }[] = [];
  #sending: Promise<void> | null = null;
  #dropped = 0;
  published = 0;

  constructor(
    private readonly bus: ClusterBus,
    private readonly root: string,
    private readonly logger: Logger,
    private readonly maxQueued = 100_000,
  ) {}

  stored(m: StoredMessage): void {
    if (m.kind !== 'telemetry' && m.kind !== 'diagnostics') return;
    const body = { deviceId: m.deviceId, name: m.name, kind: m.kind, receivedAt: new Date(m.receivedAt).toISOString(), ...(m.commandId === undefined ? {} : { commandId: m.commandId }), payload: m.payload };
    this.#queue.push({ subject: dataSubject(this.root, m), data: Buffer.from(JSON.stringify(body)), msgId: randomUUID() });
    if (this.#queue.length > this.maxQueued) {
      this.#queue.shift();
      this.#dropped++;
    }
    this.flush();
  }

  get queued(): number {
    return this.#queue.length;
  }

  get dropped(): number {
    return this.#dropped;
  }

  async drain(timeoutMs = 5_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (this.#queue.length > 0 && Date.now() < end) {
      this.flush();
      await (this.#sending ?? new Promise((r) => setTimeout(r, 50)));
    }
  }

  /** Sends what is queued (also called when the bus comes back). */
  flush(): void {
    this.#sending ??= this.#send().finally(() => {
      this.#sending = null;
      if (this.#queue.length > 0 && this.bus.connected()) this.flush();
    });
  }

  async #send(): Promise<void> {
    while (this.#queue.length > 0) {
      if (!this.bus.connected()) {
        await new Promise((r) => setTimeout(r, 250));
        if (!this.bus.connected()) return;
      }
      // In flight together, acknowledged together: a burst costs one round trip, not one each.
      const batch = this.#queue.slice(0, 256);
      const results = await Promise.allSettled(batch.map((b) => this.bus.publishDurable(b.subject, b.data, b.msgId)));
      let done = 0;
      for (const r of results) {
        if (r.status === 'rejected') break;
        done++;
      }
      this.#queue.splice(0, done);
      this.published += done;
      if (done < batch.length) {
        this.logger.warn({ err: (results[done] as PromiseRejectedResult).reason, queued: this.#queue.length }, 'telemetry export to JetStream failed; retrying');
        await new Promise((r) => setTimeout(r, 500));
        return;
      }
    }
  }
}
