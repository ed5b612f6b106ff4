import { parseDuration, type Allocation, type AttestationType, type ProvisioningResult } from '@fleetkey/protocol';
import type { OpContext } from '../../context/op-context.js';
import type { UnitOfWork, Work } from '../../context/unit-of-work.js';
import type { Store } from '../../store/open-store.js';
import type { EnrollmentRow } from '../../store/schema.js';
import type { CaModule } from '../ca/ca-module.js';
import type { BindingService } from '../registry/binding-service.js';
import type { DeviceService } from '../registry/device-service.js';
import type { NameService } from '../registry/name-service.js';
import { allocateName } from './allocation.js';
import { askDecision } from './decision-webhook.js';
import type { OutboundDestinations } from '../events/webhook-destinations.js';
import type { EnrollmentService } from './enrollment-service.js';
import { checkEvidence, recordEvidence } from './evidence.js';
import { refused, type AttestationMethod, type Attested } from './attestation/method.js';

export interface ProvisioningDeps {
  readonly uow: UnitOfWork;
  readonly ca: CaModule;
  readonly devices: DeviceService;
  readonly names: NameService;
  readonly bindings: BindingService;
  readonly renewalGraceMs: number;
  readonly endpoints: () => { deviceUrl: string; mqttUrl: string | null };
  readonly enrollments: EnrollmentService;
  readonly store: Store;
  readonly destinations: OutboundDestinations;
}

/**
 * Provisioning, whatever the method: the method attests, then one transaction applies the
 * enrollment's policy (enabled, expiry, device limit, re-provisioning), admits or checks the
 * device and the evidence bound to it, issues the operational certificate through the CA's
 * pipeline, allocates the name, and records it all with its audit entry. Every decision, allowed
 * or refused, is audited.
 */
export class ProvisioningService {
  constructor(private readonly deps: ProvisioningDeps) {}

  challenge<C>(ctx: OpContext, method: AttestationMethod<C, unknown>, request: C, subject: string): Promise<unknown> {
    return this.deps.uow.run(ctx, { action: `provisioning.${method.type}.challenge`, subject }, (w) => method.challenge(w, request));
  }

  /**
   * Attest, apply the enrollment's policy and issue in one transaction. An enrollment with an
   * allow/deny webhook takes three steps instead, so no network call ever runs inside a
   * transaction: attest (consuming single-use challenges, audited), ask the webhook, complete.
   */
  async provision<E>(ctx: OpContext, method: AttestationMethod<never, E>, evidence: E, csr: string, subject: string): Promise<ProvisioningResult> {
    const { uow } = this.deps;
    const action = `provisioning.${method.type}`;
    const first = await uow.run(ctx, { action, subject }, async (w) => {
      const a = await method.attest(w, evidence);
      w.subject(`device:${a.deviceId}`);
      if (a.enrollment.decision_url === null) return { result: await this.complete(w, a, csr) };
      // A takeover attempt is refused here, before the webhook is asked; complete() checks again.
      await checkEvidence(w, a.deviceId, a.evidence, a.enrollment.id);
      w.note({ ...a.detail, enrollmentId: a.enrollment.id, stage: 'attested; asking the decision webhook' });
      return { attested: a };
    });
    if ('result' in first) return first.result;
    const attested = first.attested;
    const device = `device:${attested.deviceId}`;
    const secret = this.deps.enrollments.decisionSecret(attested.enrollment) ?? '';
    const db = this.deps.store.db;
    const row = await db.selectFrom('devices').select(['model', 'serials']).where('id', '=', attested.deviceId).executeTakeFirst();
    const record = await db.selectFrom('provisioning_records').select('device_id').where('device_id', '=', attested.deviceId).executeTakeFirst();
    const verdict = await askDecision(attested.enrollment, secret, {
      deviceId: attested.deviceId,
      enrollmentId: attested.enrollment.id,
      method: method.type,
      model: row?.model ?? null,
      serials: row?.serials === null || row?.serials === undefined ? {} : (JSON.parse(row.serials) as Record<string, string>),
      reprovisioning: record !== undefined,
    }, this.deps.destinations);
    if (!verdict.allow) return uow.run(ctx, { action, subject: device }, async () => Promise.reject(refused(verdict.why)));
    return uow.run(ctx, { action, subject: device }, async (w) => {
      // Re-read the enrollment: it may have been disabled while the webhook was asked.
      const fresh = await w.tx.selectFrom('enrollments').selectAll().where('id', '=', attested.enrollment.id).executeTakeFirstOrThrow();
      return this.complete(w, { ...attested, enrollment: fresh }, csr);
    });
  }

  private async complete(w: Work, a: Attested, csr: string): Promise<ProvisioningResult> {
    const { devices, names, bindings, ca } = this.deps;
    const e = a.enrollment;
    checkEnrollment(e, w.now);

    let device = await w.tx.selectFrom('devices').selectAll().where('id', '=', a.deviceId).executeTakeFirst();
    if (device === undefined) {
      // A group enrollment vouches for devices by their credential; an individual one names a known device.
      if (e.kind !== 'group') throw refused(`device ${a.deviceId} is not registered`);
      device = await devices.registerInWork(w, a.deviceId, null);
    }
    device = await devices.lockDevice(w.tx, device.id);
    if (!['manufactured', 'provisioned', 'active'].includes(device.status)) throw refused(`device ${device.id} is ${device.status}`);
    // Issue 10: the device id comes from the request; the evidence must be the device's own.
    const evidence = await checkEvidence(w, device.id, a.evidence, e.id);

    const record = await w.tx.selectFrom('provisioning_records').selectAll().where('device_id', '=', device.id).executeTakeFirst();
    if (record === undefined && e.max_devices !== null) {
      const used = await w.tx.selectFrom('provisioning_records').select((eb) => eb.fn.countAll<number>().as('n')).where('enrollment_id', '=', e.id).executeTakeFirstOrThrow();
      if (Number(used.n) >= e.max_devices) throw refused(`enrollment ${e.id} reached its limit of ${e.max_devices} devices`);
    }

    // Re-provisioning policy: `never` refuses; `keep` keeps the name and supersedes the current
    // certificate; `reset` revokes the device's operational certificates and frees its name.
    let supersedes: { serial: string; graceMs: number } | undefined;
    if (record !== undefined) {
      if (e.reprovisioning === 'never') throw refused(`device ${device.id} was provisioned before and ${e.id} forbids re-provisioning`);
      const current = await w.tx
        .selectFrom('certificates')
        .select('serial')
        .where('device_id', '=', device.id)
        .where('kind', '=', 'operational')
        .where('status', '=', 'valid')
        .orderBy('created_at', 'desc')
        .executeTakeFirst();
      if (e.reprovisioning === 'keep' && current !== undefined) supersedes = { serial: current.serial, graceMs: this.deps.renewalGraceMs };
      if (e.reprovisioning === 'reset') {
        await ca.certificates.revokeAllForDevice(w, device.id, 'superseded', 'operational');
        await bindings.unbindDeviceInWork(w, device.id, 're-provisioned with reset');
      }
    }

    const issued = await ca.certificates.sign(w, device.id, csr, {
      method: `${a.method}:${e.id}`,
      kind: 'operational',
      validityMs: parseDuration(e.validity) ?? Number.NaN,
      deviceStatuses: ['manufactured', 'provisioned', 'active'],
      forbiddenKeys: a.forbiddenKeys,
      ...(supersedes === undefined ? {} : { supersedes }),
    });

    let name = await bindings.currentNameOf(w, device.id);
    let allocation = 'kept';
    if (name === null) {
      const wanted = allocateName(JSON.parse(e.allocation) as Allocation, device);
      allocation = 'pending';
      if (wanted !== null) {
        const existing = await names.findCurrent(w, wanted);
        const nameRow = existing ?? (await names.createInWork(w, wanted, JSON.parse(e.tags) as Record<string, string>));
        const holder = await w.tx.selectFrom('bindings').select('device_id').where('name_id', '=', nameRow.id).where('valid_to', 'is', null).executeTakeFirst();
        // Never take a name from another device: that is a replacement, an operator's decision.
        if (holder === undefined) {
          await bindings.bindInWork(w, nameRow, device.id, `provisioned by enrollment ${e.label}`);
          name = wanted;
          allocation = 'bound';
        } else {
          allocation = `pending (${wanted} is bound to ${holder.device_id})`;
        }
      }
    }

    await devices.markProvisioned(w, device);
    await recordEvidence(w, device.id, a.evidence, e.id, evidence);
    if (record === undefined) {
      await w.tx.insertInto('provisioning_records').values({ device_id: device.id, enrollment_id: e.id, method: a.method, first_at: w.now, last_at: w.now, count: 1, last_serial: issued.serial }).execute();
    } else {
      await w.tx.updateTable('provisioning_records').set({ enrollment_id: e.id, method: a.method, last_at: w.now, count: record.count + 1, last_serial: issued.serial }).where('device_id', '=', device.id).execute();
    }
    w.note({ ...a.detail, enrollmentId: e.id, method: a.method, serial: issued.serial, name, allocation, reprovisioned: record !== undefined, policy: e.reprovisioning });

    const bundle = ca.authorities.root().row.certificate_pem + ca.authorities.trusted('issuing').map((x) => x.row.certificate_pem).join('');
    const lifetime = issued.notAfter - issued.notBefore;
    const ep = this.deps.endpoints();
    return {
      deviceId: device.id,
      name,
      certificatePem: issued.pem,
      chainPem: issued.chainPem,
      caBundlePem: bundle,
      gateway: { mqttUrl: ep.mqttUrl, deviceUrl: ep.deviceUrl },
      notAfter: new Date(issued.notAfter).toISOString(),
      renewAfter: new Date(issued.notBefore + Math.floor((lifetime * 2) / 3)).toISOString(),
    };
  }
}

function checkEnrollment(e: EnrollmentRow, now: number): void {
  if (e.enabled !== 1) throw refused(`enrollment ${e.id} is disabled`);
  if (e.expires_at !== null && e.expires_at <= now) throw refused(`enrollment ${e.id} expired`);
}

export type { AttestationType };
