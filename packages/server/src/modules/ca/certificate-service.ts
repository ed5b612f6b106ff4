import { X509Certificate } from 'node:crypto';
import { FleetkeyError, parseDuration, type Certificate, type RevocationReason } from '@fleetkey/protocol';
import { toPem } from '@fleetkey/crypto';
import type { Clock } from '../../context/clock.js';
import { iso, isoOrNull } from '../../context/clock.js';
import type { OpContext } from '../../context/op-context.js';
import type { UnitOfWork, Work } from '../../context/unit-of-work.js';
import type { Store } from '../../store/open-store.js';
import type { CertificateRow } from '../../store/schema.js';
import { allows } from '../auth/policy.js';
import type { Authorities } from './authorities.js';
import { BACKDATE_MS, signDeviceCertificate, spkiSha256, type IssuanceConstraints, type IssuedRecord } from './issuance.js';

export interface CaPolicy {
  readonly defaultValidityMs: number;
  readonly renewalGraceMs: number;
}

export function toCertificate(r: CertificateRow, now: number): Certificate {
  const status = r.status === 'valid' && r.not_after <= now ? 'expired' : r.status;
  return {
    serial: r.serial,
    fingerprintSha256: r.fingerprint,
    deviceId: r.device_id,
    kind: r.kind,
    method: r.method,
    issuerId: r.issuer_id,
    notBefore: iso(r.not_before),
    notAfter: iso(r.not_after),
    status,
    supersededBy: r.superseded_by,
    revokedAt: isoOrNull(r.revoked_at),
    revocationReason: r.revocation_reason,
    certificatePem: toPem(Buffer.from(r.der, 'base64'), 'CERTIFICATE'),
  };
}

/** Certificates of devices: issuance (through the one pipeline), renewal, revocation, lookups. */
export class CertificateService {
  constructor(
    private readonly store: Store,
    private readonly uow: UnitOfWork,
    private readonly authorities: Authorities,
    private readonly clock: Clock,
    private readonly policy: CaPolicy,
  ) {}

  /** Issues inside a unit of work the caller already holds (provisioning methods use this). */
  sign(w: Work, deviceId: string, csr: Buffer | string, c: IssuanceConstraints): Promise<IssuedRecord> {
    return signDeviceCertificate(w, this.authorities, deviceId, csr, c);
  }

  /** The operator path (`fleetkey cert issue`): role manufacturing or admin. */
  async issueByOperator(ctx: OpContext, body: { deviceId: string; csr: string; validity?: string; kind?: 'operational' | 'idevid' }): Promise<IssuedRecord> {
    // A birth certificate lives as long as its device (IEEE 802.1AR) unless the run says otherwise.
    const validity = body.validity ?? (body.kind === 'idevid' ? 'unlimited' : undefined);
    const validityMs = validity === undefined ? this.policy.defaultValidityMs : validity === 'unlimited' ? 'unlimited' : (parseDuration(validity) ?? Number.NaN);
    const kind = body.kind ?? 'operational';
    return this.uow.run(ctx, { action: 'certificate.issue', subject: `device:${body.deviceId}` }, async (w) => {
      // An operational certificate is the device itself to the gateway and the device plane: a
      // role that may only issue birth certificates (manufacturing) minting one would impersonate
      // a device in service with a key of its choosing, past attestation and evidence binding.
      if (kind === 'operational' && ctx.actor.kind === 'token' && !allows(ctx.actor.role, 'cert:issue-operational')) {
        throw new FleetkeyError('FORBIDDEN', { detail: `role ${ctx.actor.role} issues birth certificates (kind idevid) only` });
      }
      return this.sign(w, body.deviceId, body.csr, { method: 'operator', kind, validityMs, deviceStatuses: ['manufactured', 'provisioned', 'active'] });
    });
  }

  /**
   * Renewal over mTLS: the presented certificate must be ours, current, valid (not superseded or
   * revoked) and its device in good standing; the CSR must carry a NEW key. The old certificate
   * is superseded and keeps authenticating for the grace period so a device can reconnect.
   */
  async renew(ctx: OpContext, presentedDer: Buffer, csr: string, tlsError: string | null = null): Promise<IssuedRecord> {
    const refuse = (detail: string): never => {
      throw new FleetkeyError('CERT_RENEWAL_REFUSED', { detail });
    };
    if (tlsError !== null || presentedDer.length === 0) {
      return this.uow.run(ctx, { action: 'certificate.renew' }, async () => refuse(`TLS client authentication failed: ${tlsError ?? 'no certificate'}`));
    }
    const presented = new X509Certificate(presentedDer);
    // Our serials are 16 octets with the top bits 01 (positive, no leading zero), so Node's hex is the stored form.
    const serial = presented.serialNumber.toLowerCase();
    const row = await this.findBySerial(serial);
    return this.uow.run(ctx, { action: 'certificate.renew', subject: row === undefined ? `certificate:${serial}` : `device:${row.device_id}` }, async (w) => {
      if (row === undefined || row.fingerprint !== presentedFingerprint(presentedDer)) return refuse(`certificate ${serial} is not one of ours`);
      if (row.kind !== 'operational') return refuse('only operational certificates renew');
      if (row.status !== 'valid') return refuse(`certificate ${serial} is ${row.status}`);
      // An expired certificate is re-attested through provisioning, never renewed.
      if (row.not_after <= w.now) return refuse(`certificate ${serial} expired`);
      return this.sign(w, row.device_id, csr, {
        method: row.method,
        kind: 'operational',
        // The renewed certificate keeps the lifetime policy it was issued under (backdating excluded).
        validityMs: row.not_after - row.not_before - BACKDATE_MS,
        deviceStatuses: ['provisioned', 'active'],
        forbiddenKeys: [spkiSha256(presented.publicKey.export({ type: 'spki', format: 'der' }))],
        supersedes: { serial: row.serial, graceMs: this.policy.renewalGraceMs },
      });
    });
  }

  async revoke(ctx: OpContext, serial: string, reason: RevocationReason): Promise<Certificate> {
    return this.uow.run(ctx, { action: 'certificate.revoke', subject: `certificate:${serial}` }, async (w) => {
      const row = await w.tx.selectFrom('certificates').selectAll().where('serial', '=', serial).executeTakeFirst();
      if (row === undefined) throw new FleetkeyError('CERT_NOT_FOUND', { detail: serial });
      if (row.status === 'revoked') throw new FleetkeyError('CERT_ALREADY_REVOKED', { detail: serial });
      await this.markRevoked(w, [row], reason);
      w.note({ deviceId: row.device_id, reason });
      return toCertificate({ ...row, status: 'revoked', revoked_at: w.now, revocation_reason: reason }, w.now);
    });
  }

  /** Device revocation: every certificate of the device, in the device change's own transaction. */
  async revokeAllForDevice(w: Work, deviceId: string, reason: RevocationReason, kind?: 'operational' | 'idevid'): Promise<number> {
    let q = w.tx.selectFrom('certificates').selectAll().where('device_id', '=', deviceId).where('status', '!=', 'revoked');
    if (kind !== undefined) q = q.where('kind', '=', kind);
    const rows = await q.execute();
    await this.markRevoked(w, rows, reason);
    return rows.length;
  }

  async list(filter: { deviceId?: string; limit?: number }): Promise<Certificate[]> {
    let q = this.store.db.selectFrom('certificates').selectAll().orderBy('created_at', 'desc');
    if (filter.deviceId !== undefined) q = q.where('device_id', '=', filter.deviceId);
    const now = this.clock.now();
    return (await q.limit(filter.limit ?? 100).execute()).map((r) => toCertificate(r, now));
  }

  async show(serial: string): Promise<Certificate> {
    const row = await this.findBySerial(serial);
    if (row === undefined) throw new FleetkeyError('CERT_NOT_FOUND', { detail: serial });
    return toCertificate(row, this.clock.now());
  }

  findBySerial(serial: string): Promise<CertificateRow | undefined> {
    return this.store.db.selectFrom('certificates').selectAll().where('serial', '=', serial.toLowerCase()).executeTakeFirst();
  }

  private async markRevoked(w: Work, rows: CertificateRow[], reason: RevocationReason): Promise<void> {
    for (const row of rows) {
      await w.tx
        .updateTable('certificates')
        .set({ status: 'revoked', revoked_at: w.now, revocation_reason: reason })
        .where('serial', '=', row.serial)
        .execute();
      await w.emit('certificate.revoked', `device:${row.device_id}`, { serial: row.serial, deviceId: row.device_id, issuerId: row.issuer_id, reason });
    }
  }
}

function presentedFingerprint(der: Buffer): string {
  return new X509Certificate(der).fingerprint256.replaceAll(':', '').toLowerCase();
}
