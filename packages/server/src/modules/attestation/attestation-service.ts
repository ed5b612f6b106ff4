import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { parseQuote } from '@fleetkey/crypto';
import { FleetkeyError, type AttestationNonceAnswer, type AttestationQuoteBody, type AttestationVerdict, type DeviceAttestations } from '@fleetkey/protocol';
import type { Logger } from 'pino';
import { iso, isoOrNull, type Clock } from '../../context/clock.js';
import { systemContext, type OpContext } from '../../context/op-context.js';
import type { UnitOfWork, Work } from '../../context/unit-of-work.js';
import type { Store } from '../../store/open-store.js';
import type { AttestationAction, AttestationPolicyRow } from '../../store/schema.js';
import type { DeviceService } from '../registry/device-service.js';
import { quotePolicyOf, type AttestationPolicies } from './policy-service.js';
import { authenticateQuote, judgeValues, loadAttestationKey, type AttestationKey } from './verify-quote.js';

export interface AttestationOptions {
  /** How long a quote nonce stays valid (default 60 s): a quote takes the TPM well under a second. */
  readonly nonceTtlMs: number;
  /** Outstanding nonces kept per device; older ones are dropped when a new one is issued. */
  readonly maxNoncesPerDevice: number;
}

const sha256hex = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * Measured-boot attestation (issue 13): nonces, quote verification against the AK recorded at
 * provisioning and the device's policy, verdicts kept as history, and containment. The set of
 * quarantined devices is held in memory too, so the gateway's per-PUBLISH check costs a map
 * lookup; it is loaded at start and changed only after the transaction that changed the row.
 */
export class AttestationService {
  readonly #quarantined = new Map<string, string>();
  // Parsed AKs by their TPM2B_PUBLIC (base64): verifying with a cached KeyObject is what makes
  // thousands of quotes per second possible (STYLE §8).
  readonly #keys = new Map<string, AttestationKey>();
  /** Called after a device is quarantined or released (the gateway pushes held commands). */
  onContainment: ((deviceId: string, quarantined: boolean) => void) | undefined;
  /** Asks a connected device to attest now (the gateway's devices/{id}/attestation/request); false when it cannot be reached. */
  requester: ((deviceId: string) => boolean) | undefined;

  constructor(
    private readonly store: Store,
    private readonly uow: UnitOfWork,
    private readonly clock: Clock,
    private readonly policies: AttestationPolicies,
    private readonly devices: DeviceService,
    private readonly logger: Logger,
    private readonly options: AttestationOptions,
  ) {}

  async load(): Promise<void> {
    await this.policies.refresh();
    const rows = await this.store.db.selectFrom('device_attestation').select(['device_id', 'quarantine_reason']).where('quarantined_at', 'is not', null).execute();
    this.#quarantined.clear();
    for (const r of rows) this.#quarantined.set(r.device_id, r.quarantine_reason ?? 'quarantined');
  }

  /** The reason the device is quarantined, or null. Synchronous: the gateway asks per packet. */
  contained(deviceId: string): string | null {
    return this.#quarantined.get(deviceId) ?? null;
  }

  /**
   * For a connect: null when allowed; otherwise why. Only a policy with requireOnConnect refuses,
   * and only when no trusted attestation younger than its maximum age is on record.
   */
  async admit(deviceId: string): Promise<string | null> {
    if (!this.policies.anyRequireOnConnect) return null;
    const policy = await this.policies.forDevice(this.store.db, deviceId);
    if (policy === undefined || policy.require_on_connect !== 1) return null;
    const st = await this.store.db.selectFrom('device_attestation').select(['last_trusted_at', 'status']).where('device_id', '=', deviceId).executeTakeFirst();
    if (st?.last_trusted_at == null || st.status !== 'trusted') return `attestation required: ${st === undefined ? 'never attested' : `status ${st.status}`}`;
    if (this.clock.now() - st.last_trusted_at > policy.max_age_ms) return `attestation required: last trusted ${iso(st.last_trusted_at)} is older than ${policy.max_age_ms / 1000} s`;
    return null;
  }

  /** A fresh nonce for the device's next quote, with what its policy wants quoted. */
  async nonce(ctx: OpContext, deviceId: string): Promise<AttestationNonceAnswer> {
    return this.uow.run(ctx, { action: 'device.attestation_nonce', subject: `device:${deviceId}` }, async (w) => {
      const policy = await this.policies.forDevice(w.tx, deviceId);
      if (policy === undefined) throw new FleetkeyError('ATTESTATION_NO_POLICY', { detail: `no policy for device ${deviceId}` });
      // 32 bytes from the CSPRNG, stored hashed: the TPM copies it into TPMS_ATTEST.extraData.
      const nonce = randomBytes(32);
      await w.tx.deleteFrom('attestation_nonces').where('device_id', '=', deviceId).where('expires_at', '<=', w.now).execute();
      const live = await w.tx.selectFrom('attestation_nonces').select(['nonce_sha256']).where('device_id', '=', deviceId).orderBy('created_at', 'desc').execute();
      const drop = live.slice(this.options.maxNoncesPerDevice - 1).map((r) => r.nonce_sha256);
      if (drop.length > 0) await w.tx.deleteFrom('attestation_nonces').where('nonce_sha256', 'in', drop).execute();
      const expiresAt = w.now + this.options.nonceTtlMs;
      await w.tx.insertInto('attestation_nonces').values({ nonce_sha256: sha256hex(nonce), device_id: deviceId, expires_at: expiresAt, used_at: null, created_at: w.now }).execute();
      return { nonce: nonce.toString('hex'), expiresAt: iso(expiresAt), pcrs: JSON.parse(policy.pcrs) as number[], intervalSeconds: Math.round(policy.interval_ms / 1000) };
    });
  }

  private key(b64: string): AttestationKey {
    let k = this.#keys.get(b64);
    if (k === undefined) {
      k = loadAttestationKey(b64);
      if (this.#keys.size >= 100_000) this.#keys.clear();
      this.#keys.set(b64, k);
    }
    return k;
  }

  /**
   * Verifies a quote of the authenticated device and records the verdict. Refusals (malformed,
   * forged, replayed, other selection, values that do not match the signed digest) change nothing
   * but the nonce they used; an authentic, fresh quote whose values break the policy is a failed
   * attestation, recorded, published and acted on (quarantine, revoke or alert).
   */
  async submit(ctx: OpContext, deviceId: string, body: AttestationQuoteBody): Promise<AttestationVerdict> {
    const verdict = await this.uow.run(ctx, { action: 'device.attestation', subject: `device:${deviceId}` }, async (w) => {
      // A device speaks only for itself: the body may name a device, but only the authenticated one.
      if (body.deviceId !== undefined && body.deviceId !== deviceId) throw new FleetkeyError('FORBIDDEN', { detail: `device ${deviceId} submitted a quote for ${body.deviceId}` });
      const ev = await w.tx.selectFrom('device_evidence').select(['method', 'ak_public']).where('device_id', '=', deviceId).where('reset_at', 'is', null).executeTakeFirst();
      if (ev === undefined || ev.method !== 'tpm' || ev.ak_public === null) throw new FleetkeyError('ATTESTATION_NO_KEY', { detail: `device ${deviceId} has no recorded TPM AK` });
      const policy = await this.policies.forDevice(w.tx, deviceId);
      if (policy === undefined) throw new FleetkeyError('ATTESTATION_NO_POLICY', { detail: `no policy for device ${deviceId}` });
      const quoteBytes = Buffer.from(body.quote, 'base64');
      // TPM 2.0 Part 2 §10.12.12: extraData carries the qualifying data we issued (the nonce).
      const parsed = parseQuote(quoteBytes);
      await this.useNonce(w, deviceId, parsed.extraData);
      let ak: AttestationKey;
      try {
        ak = this.key(ev.ak_public);
      } catch (e) {
        throw new FleetkeyError('ATTESTATION_NO_KEY', { detail: `recorded AK unusable: ${e instanceof FleetkeyError ? e.detail : String(e)}` });
      }
      const eventLog = body.eventLog === undefined ? undefined : Buffer.from(body.eventLog, 'base64');
      const qp = quotePolicyOf(policy);
      const authentic = authenticateQuote(ak, { quote: quoteBytes, signature: Buffer.from(body.signature, 'base64'), pcrs: body.pcrs, eventLog }, qp);
      const judged = judgeValues(authentic.values, eventLog, qp);
      const pcrs = Object.fromEntries([...authentic.values].map(([k, v]) => [String(k), v.toString('hex')]));
      return this.record(w, deviceId, policy, judged, pcrs);
    });
    this.applyContainment(deviceId, verdict.quarantineChange);
    return verdict.answer;
  }

  private async useNonce(w: Work, deviceId: string, extraData: Buffer): Promise<void> {
    const h = sha256hex(extraData);
    // Single use even under concurrency: only one submission can flip used_at (and only for the
    // device it was issued to: another device's nonce is unknown here).
    const res = await w.tx
      .updateTable('attestation_nonces')
      .set({ used_at: w.now })
      .where('nonce_sha256', '=', h)
      .where('device_id', '=', deviceId)
      .where('used_at', 'is', null)
      .where('expires_at', '>', w.now)
      .executeTakeFirst();
    if (res.numUpdatedRows !== 1n) throw new FleetkeyError('ATTESTATION_NONCE_INVALID', { detail: 'extraData is not an unused, unexpired nonce issued to this device' });
    // Used up whatever follows: a refused quote must not leave its nonce open for another try.
    w.keepIfRefused({ apply: (tx) => tx.updateTable('attestation_nonces').set({ used_at: w.now }).where('nonce_sha256', '=', h).where('used_at', 'is', null).execute() });
  }

  private async record(
    w: Work,
    deviceId: string,
    policy: AttestationPolicyRow,
    judged: { code: string; reason: string } | null,
    pcrs: Record<string, string>,
  ): Promise<{ answer: AttestationVerdict; quarantineChange: string | false | null }> {
    const prior = await w.tx.selectFrom('device_attestation').selectAll().where('device_id', '=', deviceId).executeTakeFirst();
    const dueAt = w.now + policy.max_age_ms;
    let action: AttestationAction | 'release' | null = null;
    let quarantineChange: string | false | null = null; // string: quarantined for; false: released
    let quarantinedAt = prior?.quarantined_at ?? null;
    let quarantineReason = prior?.quarantine_reason ?? null;
    const subject = `device:${deviceId}`;
    if (judged === null) {
      if (quarantinedAt !== null) {
        // A quarantined device that attests good again is released, audited and published.
        action = 'release';
        await w.emit('device.released', subject, { deviceId, policyId: policy.id, quarantinedAt: iso(quarantinedAt), reason: quarantineReason });
        quarantinedAt = null;
        quarantineReason = null;
        quarantineChange = false;
      }
    } else {
      action = policy.on_failure;
      await w.emit('device.attestation_failed', subject, { deviceId, policyId: policy.id, code: judged.code, reason: judged.reason, action });
      const applied = await this.act(w, deviceId, policy.on_failure, `attestation failed: ${judged.reason}`, quarantinedAt);
      if (applied !== null) {
        quarantinedAt = w.now;
        quarantineReason = applied;
        quarantineChange = applied;
      }
    }
    const status = judged === null ? 'trusted' : 'failed';
    const row = {
      status,
      policy_id: policy.id,
      last_trusted_at: judged === null ? w.now : (prior?.last_trusted_at ?? null),
      last_result_at: w.now,
      due_at: dueAt,
      reason: judged === null ? null : judged.reason,
      quarantined_at: quarantinedAt,
      quarantine_reason: quarantineReason,
    } as const;
    await w.tx
      .insertInto('device_attestation')
      .values({ device_id: deviceId, ...row })
      .onConflict((oc) => oc.column('device_id').doUpdateSet(row))
      .execute();
    await w.tx
      .insertInto('attestations')
      .values({ id: randomUUID(), device_id: deviceId, at: w.now, verdict: status, code: judged?.code ?? null, reason: judged?.reason ?? null, policy_id: policy.id, pcrs: JSON.stringify(pcrs), action })
      .execute();
    w.note({ verdict: status, policyId: policy.id, ...(judged === null ? {} : { code: judged.code, reason: judged.reason }), ...(action === null ? {} : { action }) });
    return { answer: { verdict: status, code: judged?.code ?? null, quarantined: quarantinedAt !== null, nextDueAt: iso(w.now + policy.interval_ms) }, quarantineChange };
  }

  /**
   * Applies a policy action in the caller's transaction. Returns the quarantine reason when the
   * device enters quarantine now, null otherwise (already quarantined, revoked, or alert only).
   */
  private async act(w: Work, deviceId: string, action: AttestationAction, reason: string, quarantinedAt: number | null): Promise<string | null> {
    const subject = `device:${deviceId}`;
    if (action === 'quarantine') {
      if (quarantinedAt !== null) return null;
      await w.emit('device.quarantined', subject, { deviceId, reason });
      return reason.slice(0, 500);
    }
    if (action === 'revoke') {
      const row = await this.devices.lockDevice(w.tx, deviceId);
      if (row.status !== 'revoked' && row.status !== 'retired') await this.devices.applyStatus(w, row, 'revoke', reason.slice(0, 500));
    }
    return null;
  }

  private applyContainment(deviceId: string, change: string | false | null): void {
    if (change === null) return;
    if (change === false) this.#quarantined.delete(deviceId);
    else this.#quarantined.set(deviceId, change);
    try {
      this.onContainment?.(deviceId, change !== false);
    } catch (err) {
      this.logger.error({ err }, 'containment listener failed');
    }
  }

  /**
   * Marks devices whose attestation is overdue (now > due_at) as stale, records it, publishes
   * `device.attestation_stale` and applies the policy's staleness action. Returns how many.
   */
  async sweep(limit = 500): Promise<number> {
    const now = this.clock.now();
    const due = await this.store.db
      .selectFrom('device_attestation')
      .select(['device_id', 'policy_id'])
      .where('status', 'in', ['trusted', 'failed'])
      .where('due_at', '<', now)
      .orderBy('due_at')
      .limit(limit)
      .execute();
    let n = 0;
    for (const d of due) {
      try {
        const change = await this.uow.run(systemContext('attestation-sweeper'), { action: 'device.attestation_stale', subject: `device:${d.device_id}` }, async (w) => {
          const cur = await w.tx.selectFrom('device_attestation').selectAll().where('device_id', '=', d.device_id).executeTakeFirst();
          // Re-checked in the transaction: a quote that landed since the scan keeps the device fresh.
          if (cur === undefined || cur.status === 'stale' || cur.due_at >= w.now) return null;
          const policy = await this.policies.byId(w.tx, cur.policy_id);
          const action: AttestationAction = policy?.on_stale ?? 'alert';
          const reason = `no attestation since ${iso(cur.last_result_at)} (due ${iso(cur.due_at)})`;
          await w.emit('device.attestation_stale', `device:${d.device_id}`, { deviceId: d.device_id, policyId: cur.policy_id, lastResultAt: iso(cur.last_result_at), dueAt: iso(cur.due_at), action });
          const q = await this.act(w, d.device_id, action, `attestation stale: ${reason}`, cur.quarantined_at);
          await w.tx
            .updateTable('device_attestation')
            .set({ status: 'stale', reason, ...(q === null ? {} : { quarantined_at: w.now, quarantine_reason: q }) })
            .where('device_id', '=', d.device_id)
            .execute();
          await w.tx.insertInto('attestations').values({ id: randomUUID(), device_id: d.device_id, at: w.now, verdict: 'stale', code: null, reason, policy_id: cur.policy_id, pcrs: null, action }).execute();
          w.note({ verdict: 'stale', reason, action });
          return q;
        });
        if (change !== null) this.applyContainment(d.device_id, change);
        n++;
      } catch (err) {
        this.logger.error({ err, deviceId: d.device_id }, 'attestation staleness sweep failed for a device');
      }
    }
    return n;
  }

  /** An operator asks a device to attest now, over MQTT (issue 13). Audited; `requested` says whether it was reachable. */
  async request(ctx: OpContext, deviceId: string): Promise<{ requested: boolean }> {
    return this.uow.run(ctx, { action: 'device.attestation_requested', subject: `device:${deviceId}` }, async (w) => {
      const device = await w.tx.selectFrom('devices').select('id').where('id', '=', deviceId).executeTakeFirst();
      if (device === undefined) throw new FleetkeyError('DEVICE_NOT_FOUND', { detail: deviceId });
      const requested = this.requester?.(deviceId) ?? false;
      w.note({ requested });
      return { requested };
    });
  }

  async history(deviceId: string, limit = 100): Promise<DeviceAttestations> {
    const db = this.store.db;
    const device = await db.selectFrom('devices').select('id').where('id', '=', deviceId).executeTakeFirst();
    if (device === undefined) throw new FleetkeyError('DEVICE_NOT_FOUND', { detail: deviceId });
    const st = await db.selectFrom('device_attestation').selectAll().where('device_id', '=', deviceId).executeTakeFirst();
    const rows = await db.selectFrom('attestations').selectAll().where('device_id', '=', deviceId).orderBy('at', 'desc').orderBy('id').limit(limit).execute();
    return {
      deviceId,
      status: st?.status ?? 'never',
      quarantined: st?.quarantined_at != null,
      quarantineReason: st?.quarantine_reason ?? null,
      lastTrustedAt: isoOrNull(st?.last_trusted_at ?? null),
      dueAt: st === undefined ? null : iso(st.due_at),
      history: rows.map((r) => ({
        id: r.id,
        at: iso(r.at),
        verdict: r.verdict,
        code: r.code,
        reason: r.reason,
        policyId: r.policy_id,
        pcrs: r.pcrs === null ? null : (JSON.parse(r.pcrs) as Record<string, string>),
        action: r.action,
      })),
    };
  }
}
