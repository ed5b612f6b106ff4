import { deriveDeviceKey, verifySasToken } from '@fleetkey/crypto';
import type { Clock } from '../../context/clock.js';
import type { Store } from '../../store/open-store.js';
import type { CaModule } from '../ca/ca-module.js';
import type { EnrollmentService } from '../provisioning/enrollment-service.js';
import { looksLikeJwt, type SessionTokens } from './session-tokens.js';

export type CredentialResult = { ok: true; deviceId: string; serial: string | null } | { ok: false; kind: 'bad_credentials' | 'not_authorized'; detail: string };

const IN_SERVICE = new Set(['provisioned', 'active']);
/** Connect and session tokens signed with the device key live at most an hour. */
const MAX_SAS_LIFETIME_S = 3600;

/**
 * The one place that decides whether a device credential is good right now: an operational
 * certificate (revocation view first, O(1), then its store record), a SAS token signed with the
 * device's symmetric key for a given resource, or a session token we issued. The device itself
 * must be in service. Used at MQTT CONNECT and on the device plane.
 */
export class DeviceCredentials {
  constructor(
    private readonly store: Store,
    private readonly ca: CaModule,
    private readonly enrollments: EnrollmentService,
    private readonly sessions: SessionTokens,
    private readonly clock: Clock,
  ) {}

  /** `serialNumber` as the TLS layer gives it (hex, any case) of a certificate it verified. */
  async certificate(serialNumber: string): Promise<CredentialResult> {
    const now = this.clock.now();
    const serial = serialNumber.toLowerCase();
    const view = this.ca.revocations.status(serial, now);
    if (view !== 'good') return { ok: false, kind: 'not_authorized', detail: `certificate ${serial} is ${view}` };
    const row = await this.store.db.selectFrom('certificates').select(['device_id', 'kind', 'status', 'not_after']).where('serial', '=', serial).executeTakeFirst();
    if (row === undefined || row.kind !== 'operational') return { ok: false, kind: 'not_authorized', detail: `certificate ${serial} is not an operational certificate of ours` };
    if (row.status === 'revoked' || row.not_after <= now) return { ok: false, kind: 'not_authorized', detail: `certificate ${serial} is ${row.status}` };
    return this.inService(row.device_id, serial);
  }

  /** username = device id; password = a session token we issued, or a SAS token over `<resource>/<deviceId>`. */
  async token(deviceId: string, token: string, sasResource: string): Promise<CredentialResult> {
    if (looksLikeJwt(token)) {
      const claims = await this.sessions.verify(token);
      if (claims === null || claims.deviceId !== deviceId) return { ok: false, kind: 'bad_credentials', detail: 'session token invalid' };
      if (claims.serial !== null && this.ca.revocations.status(claims.serial, this.clock.now()) !== 'good') {
        return { ok: false, kind: 'not_authorized', detail: `session token bound to certificate ${claims.serial}, which no longer authenticates` };
      }
      return this.inService(deviceId, claims.serial);
    }
    const key = await this.symmetricKey(deviceId);
    if (key === null) return { ok: false, kind: 'bad_credentials', detail: `no symmetric key for ${deviceId}` };
    try {
      const r = await verifySasToken(token, { expectedResource: `${sasResource}/${deviceId}`, key, now: new Date(this.clock.now()), maxLifetimeSeconds: MAX_SAS_LIFETIME_S });
      if (!r.ok) return { ok: false, kind: 'bad_credentials', detail: `token ${r.reason}` };
    } finally {
      key.fill(0);
    }
    return this.inService(deviceId, null);
  }

  private async inService(deviceId: string, serial: string | null): Promise<CredentialResult> {
    const d = await this.store.db.selectFrom('devices').select('status').where('id', '=', deviceId).executeTakeFirst();
    if (d === undefined || !IN_SERVICE.has(d.status)) return { ok: false, kind: 'not_authorized', detail: `device ${deviceId} is ${d?.status ?? 'unknown'}` };
    return { ok: true, deviceId, serial };
  }

  private async symmetricKey(deviceId: string): Promise<Buffer | null> {
    const rec = await this.store.db.selectFrom('provisioning_records').select(['enrollment_id', 'method']).where('device_id', '=', deviceId).executeTakeFirst();
    if (rec === undefined || rec.method !== 'symmetric') return null;
    const e = await this.enrollments.get(this.store.db, rec.enrollment_id);
    const secret = this.enrollments.secret(e);
    if (e.kind === 'individual') return secret;
    try {
      return deriveDeviceKey(secret, deviceId);
    } finally {
      secret.fill(0);
    }
  }
}
