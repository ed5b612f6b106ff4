import { randomUUID } from 'node:crypto';
import { FleetkeyError, type AttestationPolicy, type AttestationPolicyBody } from '@fleetkey/protocol';
import { iso } from '../../context/clock.js';
import type { OpContext } from '../../context/op-context.js';
import type { UnitOfWork } from '../../context/unit-of-work.js';
import type { Store, Tx } from '../../store/open-store.js';
import type { AttestationPolicyRow } from '../../store/schema.js';
import type { QuotePolicy } from './verify-quote.js';

export function toPolicy(r: AttestationPolicyRow): AttestationPolicy {
  return {
    id: r.id,
    scope: r.scope,
    key: r.scope_key,
    pcrs: JSON.parse(r.pcrs) as number[],
    reference: r.reference === null ? null : (JSON.parse(r.reference) as Record<string, string[]>),
    eventLog: r.event_log === null ? null : (JSON.parse(r.event_log) as Record<string, string[]>),
    intervalSeconds: Math.round(r.interval_ms / 1000),
    maxAgeSeconds: Math.round(r.max_age_ms / 1000),
    onFailure: r.on_failure,
    onStale: r.on_stale,
    requireOnConnect: r.require_on_connect === 1,
    updatedAt: iso(r.updated_at),
  };
}

export function quotePolicyOf(r: AttestationPolicyRow): QuotePolicy {
  const p = toPolicy(r);
  return { pcrs: p.pcrs, reference: p.reference, eventLog: p.eventLog };
}

/**
 * Attestation policies per enrollment or per device model (issue 13). An enrollment's policy wins
 * over its model's: an enrollment is the narrower statement of which hardware this is.
 */
export class AttestationPolicies {
  /**
   * Whether any policy requires an attestation on connect: when none does (the common case) the
   * gateway's CONNECT path costs no query at all. Refreshed at start and after every change.
   */
  anyRequireOnConnect = false;

  async refresh(): Promise<void> {
    const r = await this.store.db.selectFrom('attestation_policies').select('id').where('require_on_connect', '=', 1).limit(1).executeTakeFirst();
    this.anyRequireOnConnect = r !== undefined;
  }

  constructor(
    private readonly store: Store,
    private readonly uow: UnitOfWork,
  ) {}

  async set(ctx: OpContext, body: AttestationPolicyBody): Promise<AttestationPolicy> {
    // Judged PCRs must be quoted: a reference or event-log PCR outside the selection could never match.
    for (const [what, lists] of [['reference', body.reference], ['eventLog', body.eventLog]] as const) {
      for (const pcr of Object.keys(lists ?? {})) {
        if (!body.pcrs.includes(Number(pcr))) throw new FleetkeyError('ATTESTATION_POLICY_INVALID', { detail: `${what} judges PCR ${pcr}, which is not in pcrs` });
      }
    }
    if (body.reference === undefined && body.eventLog === undefined) {
      throw new FleetkeyError('ATTESTATION_POLICY_INVALID', { detail: 'a policy needs reference values or allowed event-log digests: otherwise every boot state is trusted' });
    }
    const maxAge = body.maxAgeSeconds ?? body.intervalSeconds * 2;
    if (maxAge < body.intervalSeconds) throw new FleetkeyError('ATTESTATION_POLICY_INVALID', { detail: 'maxAgeSeconds is shorter than intervalSeconds' });
    return this.uow.run(ctx, { action: 'attestation.policy_set', subject: `attestation-policy:${body.scope}:${body.key}` }, async (w) => {
      if (body.scope === 'enrollment') {
        const e = await w.tx.selectFrom('enrollments').select('id').where('id', '=', body.key).executeTakeFirst();
        if (e === undefined) throw new FleetkeyError('ENROLLMENT_NOT_FOUND', { detail: body.key });
      }
      const values = {
        pcrs: JSON.stringify([...body.pcrs].sort((a, b) => a - b)),
        reference: body.reference === undefined ? null : JSON.stringify(body.reference),
        event_log: body.eventLog === undefined ? null : JSON.stringify(body.eventLog),
        interval_ms: body.intervalSeconds * 1000,
        max_age_ms: maxAge * 1000,
        on_failure: body.onFailure,
        on_stale: body.onStale ?? 'alert',
        require_on_connect: body.requireOnConnect === true ? 1 : 0,
        updated_at: w.now,
      };
      const existing = await w.tx.selectFrom('attestation_policies').select('id').where('scope', '=', body.scope).where('scope_key', '=', body.key).executeTakeFirst();
      const id = existing?.id ?? randomUUID();
      if (existing === undefined) await w.tx.insertInto('attestation_policies').values({ id, scope: body.scope, scope_key: body.key, created_at: w.now, ...values }).execute();
      else await w.tx.updateTable('attestation_policies').set(values).where('id', '=', id).execute();
      const row = await w.tx.selectFrom('attestation_policies').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      const p = toPolicy(row);
      // Set before commit as well: a connect racing the change is judged by the stricter rule.
      if (p.requireOnConnect) this.anyRequireOnConnect = true;
      w.note({ policyId: id, pcrs: p.pcrs, onFailure: p.onFailure, onStale: p.onStale, intervalSeconds: p.intervalSeconds, maxAgeSeconds: p.maxAgeSeconds, requireOnConnect: p.requireOnConnect, replaced: existing !== undefined });
      return p;
    }).finally(() => this.refresh());
  }

  async list(): Promise<AttestationPolicy[]> {
    return (await this.store.db.selectFrom('attestation_policies').selectAll().orderBy('scope').orderBy('scope_key').execute()).map(toPolicy);
  }

  async remove(ctx: OpContext, id: string): Promise<void> {
    await this.uow.run(ctx, { action: 'attestation.policy_removed', subject: `attestation-policy:${id}` }, async (w) => {
      const r = await w.tx.deleteFrom('attestation_policies').where('id', '=', id).executeTakeFirst();
      if (r.numDeletedRows !== 1n) throw new FleetkeyError('ATTESTATION_POLICY_NOT_FOUND', { detail: id });
    });
    await this.refresh();
  }

  /** The policy that applies to a device: its enrollment's, else its model's. */
  async forDevice(db: Tx | Store['db'], deviceId: string): Promise<AttestationPolicyRow | undefined> {
    const ev = await db.selectFrom('device_evidence').select('enrollment_id').where('device_id', '=', deviceId).where('reset_at', 'is', null).executeTakeFirst();
    if (ev !== undefined) {
      const byEnrollment = await db.selectFrom('attestation_policies').selectAll().where('scope', '=', 'enrollment').where('scope_key', '=', ev.enrollment_id).executeTakeFirst();
      if (byEnrollment !== undefined) return byEnrollment;
    }
    const dev = await db.selectFrom('devices').select('model').where('id', '=', deviceId).executeTakeFirst();
    if (dev?.model == null) return undefined;
    return db.selectFrom('attestation_policies').selectAll().where('scope', '=', 'model').where('scope_key', '=', dev.model).executeTakeFirst();
  }

  async byId(db: Tx | Store['db'], id: string | null): Promise<AttestationPolicyRow | undefined> {
    if (id === null) return undefined;
    return db.selectFrom('attestation_policies').selectAll().where('id', '=', id).executeTakeFirst();
  }
}
