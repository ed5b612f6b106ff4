import { FleetkeyError, SIGNATURE_HEADER, signWebhook } from '@fleetkey/protocol';
import type { EnrollmentRow } from '../../store/schema.js';
import type { OutboundDestinations } from '../events/webhook-destinations.js';
import { postToDestination } from '../events/webhook-request.js';

export const DECISION_TIMEOUT_MS = 2000;

export interface DecisionRequest {
  readonly deviceId: string;
  readonly enrollmentId: string;
  readonly method: string;
  readonly model: string | null;
  readonly serials: Record<string, string>;
  readonly reprovisioning: boolean;
}

/**
 * Asks an enrollment's allow/deny webhook whether to admit a device, before anything is
 * allocated. Fail closed: only a 2xx answer `{"allow": true}` within the timeout admits; a
 * timeout, a redirect, another status or another body refuses. Signed like event webhooks, and
 * sent only to a destination checked at this call, on the address then connected to.
 */
export async function askDecision(e: EnrollmentRow, secret: string, req: DecisionRequest, destinations: OutboundDestinations): Promise<{ allow: boolean; why: string }> {
  if (e.decision_url === null) return { allow: true, why: 'no decision webhook' };
  const body = JSON.stringify(req);
  try {
    const started = Date.now();
    const dest = await destinations.check(e.decision_url);
    const headers = { 'content-type': 'application/json', [SIGNATURE_HEADER]: signWebhook(secret, Math.floor(Date.now() / 1000), body) };
    const timeoutMs = Math.max(1, DECISION_TIMEOUT_MS - (Date.now() - started));
    const { status, text } = await postToDestination(dest, headers, body, { timeoutMs, maxResponseBytes: 4096 });
    if (status < 200 || status > 299) return { allow: false, why: `decision webhook answered HTTP ${status}` };
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return { allow: false, why: 'decision webhook answered non-JSON' };
    }
    const allow = typeof parsed === 'object' && parsed !== null && (parsed as { allow?: unknown }).allow === true;
    return { allow, why: allow ? 'allowed by decision webhook' : 'denied by decision webhook' };
  } catch (err) {
    if (err instanceof FleetkeyError) return { allow: false, why: `decision webhook refused: ${err.code}: ${err.detail ?? ''}` };
    return { allow: false, why: `decision webhook failed: ${err instanceof Error ? err.name : 'error'}` };
  }
}
