import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures (docs/webhooks.md). The sender puts the Unix time in seconds and
 * HMAC-SHA256(secret, `${t}.${body}`) in one header:
 *
 *   Fleetkey-Signature: t=1700000000,v1=<64 hex>
 *
 * A receiver recomputes the MAC over the raw body bytes, compares in constant time, refuses a
 * timestamp outside its tolerance (replay of an old capture), and remembers Fleetkey-Event-Id
 * for that long to refuse a replay inside it. Deliveries are at-least-once: the same event id may
 * legitimately arrive twice after a retry, so receivers must be idempotent on it.
 */
export const SIGNATURE_HEADER = 'fleetkey-signature';
export const EVENT_ID_HEADER = 'fleetkey-event-id';
export const EVENT_TYPE_HEADER = 'fleetkey-event-type';
export const DELIVERY_ID_HEADER = 'fleetkey-delivery-id';

export function signWebhook(secret: string, timestampSec: number, body: string | Buffer): string {
  const mac = createHmac('sha256', secret).update(`${timestampSec}.`).update(body).digest('hex');
  return `t=${timestampSec},v1=${mac}`;
}

export type WebhookVerdict = { ok: true; timestamp: number } | { ok: false; reason: 'malformed' | 'stale' | 'mismatch' };

export function verifyWebhook(
  secret: string,
  header: string | undefined,
  body: string | Buffer,
  nowSec: number,
  toleranceSec = 300,
): WebhookVerdict {
  if (header === undefined || header.length > 256) return { ok: false, reason: 'malformed' };
  const m = /^t=(\d{1,12}),v1=([0-9a-f]{64})$/.exec(header);
  if (m === null) return { ok: false, reason: 'malformed' };
  const t = Number(m[1]);
  if (Math.abs(nowSec - t) > toleranceSec) return { ok: false, reason: 'stale' };
  const expected = Buffer.from(signWebhook(secret, t, body).slice(-64), 'hex');
  const given = Buffer.from(m[2] ?? '', 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'mismatch' };
  return { ok: true, timestamp: t };
}
