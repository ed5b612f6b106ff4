import { SIGNATURE_HEADER, signWebhook } from '@fleetkey/protocol';
import type { EnrollmentRow } from '../../store/schema.js';

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
 * timeout, a redirect, another status or another body refuses. Signed like event webhooks.
 */
export async function askDecision(e: EnrollmentRow, secret: string, req: DecisionRequest): Promise<{ allow: boolean; why: string }> {
  if (e.decision_url === null) return { allow: true, why: 'no decision webhook' };
  const body = JSON.stringify(req);
  try {
    const res = await fetch(e.decision_url, {
      method: 'POST',
      redirect: 'manual',
      signal: AbortSignal.timeout(DECISION_TIMEOUT_MS),
      headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signWebhook(secret, Math.floor(Date.now() / 1000), body) },
      body,
    });
    const text = (await res.text()).slice(0, 4096);
    if (res.status < 200 || res.status > 299) return { allow: false, why: `decision webhook answered HTTP ${res.status}` };
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return { allow: false, why: 'decision webhook answered non-JSON' };
    }
    const allow = typeof parsed === 'object' && parsed !== null && (parsed as { allow?: unknown }).allow === true;
    return { allow, why: allow ? 'allowed by decision webhook' : 'denied by decision webhook' };
  } catch (err) {
    return { allow: false, why: `decision webhook failed: ${err instanceof Error ? err.name : 'error'}` };
  }
}
