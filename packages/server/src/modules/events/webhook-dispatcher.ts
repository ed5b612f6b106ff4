import { randomInt } from 'node:crypto';
import {
  DELIVERY_ID_HEADER,
  EVENT_ID_HEADER,
  EVENT_TYPE_HEADER,
  FleetkeyError,
  SIGNATURE_HEADER,
  signWebhook,
} from '@fleetkey/protocol';
import type { Logger } from 'pino';
import type { Clock } from '../../context/clock.js';
import type { SecretBox } from '../../secrets/secret-box.js';
import type { Store } from '../../store/open-store.js';
import type { OutboundDestinations } from './webhook-destinations.js';
import { postToDestination } from './webhook-request.js';
import { webhookSecretAad } from './webhook-service.js';

export interface DispatcherOptions {
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly batch: number;
}

export const DEFAULT_DISPATCH: DispatcherOptions = {
  timeoutMs: 10_000,
  maxAttempts: 12,
  baseDelayMs: 1_000,
  maxDelayMs: 3_600_000,
  batch: 16,
};

/** Exponential backoff with full jitter (AWS architecture blog's "full jitter"): no thundering herd. */
export function backoffMs(attempt: number, o: DispatcherOptions): number {
  const cap = Math.min(o.maxDelayMs, o.baseDelayMs * 2 ** Math.min(attempt, 30));
  return o.baseDelayMs + randomInt(0, Math.max(1, Math.floor(cap)));
}

/**
 * Delivers pending webhook rows, at least once, in the order they are due. Woken at once after a
 * commit that wrote deliveries; a timer covers retries that come due later and a restart (pending
 * rows survive in the outbox).
 */
export class WebhookDispatcher {
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #again = false;
  #stopped = false;

  constructor(
    private readonly store: Store,
    private readonly box: SecretBox,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly destinations: OutboundDestinations,
    private readonly options: DispatcherOptions = DEFAULT_DISPATCH,
  ) {}

  start(): void {
    this.#stopped = false;
    this.kick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    while (this.#running) await new Promise((r) => setTimeout(r, 10));
  }

  kick(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    void this.#drain()
      .catch((e: unknown) => this.log.error({ err: e }, 'webhook dispatch failed'))
      .finally(() => {
        this.#running = false;
        if (this.#again) {
          this.#again = false;
          this.kick();
        }
      });
  }

  async #drain(): Promise<void> {
    for (;;) {
      if (this.#stopped) return;
      const now = this.clock.now();
      const due = await this.store.db
        .selectFrom('webhook_deliveries as d')
        .innerJoin('webhooks as w', 'w.id', 'd.webhook_id')
        .innerJoin('events as e', 'e.id', 'd.event_id')
        .select(['d.id', 'd.attempts', 'd.event_id', 'w.id as webhook_id', 'w.url', 'w.secret_sealed', 'e.type', 'e.subject', 'e.payload', 'e.created_at'])
        .where('d.status', '=', 'pending')
        .where('d.next_attempt_at', '<=', now)
        .orderBy('d.next_attempt_at')
        .limit(this.options.batch)
        .execute();
      if (due.length === 0) break;
      await Promise.all(due.map((d) => this.#deliver(d)));
    }
    await this.#scheduleNext();
  }

  async #scheduleNext(): Promise<void> {
    const next = await this.store.db
      .selectFrom('webhook_deliveries')
      .select((eb) => eb.fn.min('next_attempt_at').as('at'))
      .where('status', '=', 'pending')
      .executeTakeFirst();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const at = next?.at;
    if (at === null || at === undefined || this.#stopped) return;
    const delay = Math.max(0, Math.min(Number(at) - this.clock.now(), 60_000));
    this.#timer = setTimeout(() => this.kick(), delay);
    this.#timer.unref();
  }

  async #deliver(d: {
    id: string;
    attempts: number;
    event_id: string;
    webhook_id: string;
    url: string;
    secret_sealed: string;
    type: string;
    subject: string;
    payload: string;
    created_at: number;
  }): Promise<void> {
    const body = JSON.stringify({
      id: d.event_id,
      type: d.type,
      subject: d.subject,
      createdAt: new Date(d.created_at).toISOString(),
      data: JSON.parse(d.payload) as unknown,
    });
    let status: number | null = null;
    let error: string | null = null;
    const secret = this.box.open(d.secret_sealed, webhookSecretAad(d.webhook_id)).toString('utf8');
    try {
      // Checked again at every attempt, on the address then connected to: what the name resolved
      // to when the webhook was added proves nothing now (DNS rebinding, issue 11 item 11).
      const dest = await this.destinations.check(d.url);
      const res = await postToDestination(
        dest,
        {
          'content-type': 'application/json',
          'user-agent': 'fleetkey-webhooks/1',
          [SIGNATURE_HEADER]: signWebhook(secret, Math.floor(this.clock.now() / 1000), body),
          [EVENT_ID_HEADER]: d.event_id,
          [EVENT_TYPE_HEADER]: d.type,
          [DELIVERY_ID_HEADER]: d.id,
        },
        body,
        { timeoutMs: this.options.timeoutMs, maxResponseBytes: 1024 },
      );
      status = res.status;
      // A redirect is a failure, never followed: it could point the signed body anywhere.
      if (res.status < 200 || res.status > 299) error = `HTTP ${res.status}`;
    } catch (e) {
      error = describeFailure(e);
    }
    const now = this.clock.now();
    const attempts = d.attempts + 1;
    if (error === null) {
      await this.store.db
        .updateTable('webhook_deliveries')
        .set({ status: 'delivered', attempts, last_status: status, last_error: null, delivered_at: now })
        .where('id', '=', d.id)
        .execute();
      return;
    }
    const failed = attempts >= this.options.maxAttempts;
    await this.store.db
      .updateTable('webhook_deliveries')
      .set({
        status: failed ? 'failed' : 'pending',
        attempts,
        last_status: status,
        last_error: error,
        next_attempt_at: now + backoffMs(attempts - 1, this.options),
      })
      .where('id', '=', d.id)
      .execute();
    this.log.warn({ deliveryId: d.id, webhookId: d.webhook_id, attempts, error }, 'webhook delivery failed');
  }
}

/** What the deliveries listing shows for a failed attempt: the refusal code and detail, or the network error. */
function describeFailure(e: unknown): string {
  if (e instanceof FleetkeyError) return `${e.code}: ${e.detail ?? e.message}`.slice(0, 300);
  return e instanceof Error ? `${e.name}: ${e.message}`.slice(0, 300) : 'request failed';
}
