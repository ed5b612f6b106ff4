import { createHash, randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import { deriveDeviceKey } from '@fleetkey/crypto';
import {
  FleetkeyError,
  parseDuration,
  type Allocation,
  type CreatedEnrollment,
  type CreateEnrollmentBody,
  type DerivedKey,
  type Enrollment,
  type RevocationPolicy,
} from '@fleetkey/protocol';
import { iso, isoOrNull } from '../../context/clock.js';
import type { OpContext } from '../../context/op-context.js';
import type { UnitOfWork } from '../../context/unit-of-work.js';
import type { SecretBox } from '../../secrets/secret-box.js';
import type { Store, Tx } from '../../store/open-store.js';
import type { EnrollmentRow } from '../../store/schema.js';
import type { OutboundDestinations } from '../events/webhook-destinations.js';
import { allows } from '../auth/policy.js';

const secretAad = (id: string) => `enrollment-key:${id}`;
const decisionAad = (id: string) => `enrollment-decision:${id}`;
const HOUR = 3_600_000;

export function parsePemCertificates(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

function toEnrollment(r: EnrollmentRow, provisioned: number): Enrollment {
  return {
    id: r.id,
    label: r.label,
    kind: r.kind,
    attestation: r.attestation,
    deviceId: r.device_id,
    idevidFingerprint: r.idevid_fingerprint,
    ekPublicSha256: r.ek_sha256,
    trustAnchors: r.trust_pem === null ? [] : parsePemCertificates(r.trust_pem).map((c) => ({ subject: c.subject.replaceAll('\n', ','), fingerprintSha256: c.fingerprint256.replaceAll(':', '').toLowerCase() })),
    allocation: JSON.parse(r.allocation) as Allocation,
    tags: JSON.parse(r.tags) as Record<string, string>,
    certificateValidity: r.validity,
    reprovisioning: r.reprovisioning,
    enabled: r.enabled === 1,
    expiresAt: isoOrNull(r.expires_at),
    maxDevices: r.max_devices,
    devicesProvisioned: provisioned,
    decisionWebhookUrl: r.decision_url,
    revocation: r.revocation,
    crlUrls: JSON.parse(r.crl_urls) as string[],
    createdAt: iso(r.created_at),
  };
}

/**
 * The revocation policy of a new enrollment. X.509 with outside anchors defaults to `require`
 * (fail closed: a manufacturer's revocations must be heard); Fleetkey's own manufacturing CA
 * needs none (its revocations are in our own certificates table); other methods have no CRLs.
 */
function revocationOf(body: CreateEnrollmentBody, invalid: (detail: string) => never): { policy: RevocationPolicy; crlUrls: string[] } {
  const crlUrls = body.crlUrls ?? [];
  const asked = body.revocation !== undefined || crlUrls.length > 0;
  if (body.attestation !== 'x509') return asked ? invalid('revocation and crlUrls are for x509 enrollments') : { policy: 'none', crlUrls };
  if (body.trustAnchorsPem === undefined) {
    if (asked && !(body.revocation === 'none' && crlUrls.length === 0)) invalid("Fleetkey's own manufacturing CA is checked against its own revocations: no CRL policy");
    return { policy: 'none', crlUrls };
  }
  return { policy: body.revocation ?? 'require', crlUrls: [...new Set(crlUrls)] };
}

/**
 * Enrollments say who may provision and what they get. Individual ones name one device; group
 * ones name a trust root (manufacturer CA, TPM manufacturer root) or hold a symmetric group key,
 * sealed under the master key and shown once. The group key never leaves the server again: the
 * manufacturing station asks for per-device derived keys.
 */
export class EnrollmentService {
  constructor(
    private readonly store: Store,
    private readonly uow: UnitOfWork,
    private readonly box: SecretBox,
    private readonly defaultValidity: string,
    private readonly destinations: OutboundDestinations,
  ) {}

  /** The secret that signs this enrollment's decision webhook calls. */
  decisionSecret(row: EnrollmentRow): string | null {
    return row.decision_secret_sealed === null ? null : this.box.open(row.decision_secret_sealed, decisionAad(row.id)).toString('utf8');
  }

  /** Called after an enrollment is created (the CRL refresher fetches its CRLs at once). */
  onCreated: ((id: string) => void) | undefined;

  async create(ctx: OpContext, body: CreateEnrollmentBody): Promise<CreatedEnrollment> {
    const invalid = (detail: string): never => {
      throw new FleetkeyError('ENROLLMENT_INVALID', { detail });
    };
    if (body.kind === 'individual' && body.deviceId === undefined) invalid('an individual enrollment names its device');
    if (body.kind === 'group' && body.deviceId !== undefined) invalid('a group enrollment names no device');
    // Issue 10: an enrollment that would admit evidence nobody vouches for (any EK) is refused.
    // x509 always validates against anchors (default: our manufacturing CA); symmetric always has a key.
    if (body.attestation === 'tpm' && body.trustAnchorsPem === undefined && (body.kind === 'group' || body.ekPublicSha256 === undefined)) {
      throw new FleetkeyError('ENROLLMENT_UNAUTHENTICATED', {
        detail: body.kind === 'group' ? 'a TPM group needs the TPM manufacturer roots' : 'a TPM individual enrollment pins the EK (ekPublicSha256) or names TPM manufacturer roots',
      });
    }
    if (body.attestation !== 'x509' && body.idevidFingerprint !== undefined) invalid('idevidFingerprint is for x509 enrollments');
    if (body.attestation !== 'tpm' && body.ekPublicSha256 !== undefined) invalid('ekPublicSha256 is for tpm enrollments');
    if (body.attestation === 'symmetric' && body.trustAnchorsPem !== undefined) invalid('symmetric enrollments have no trust anchors');
    const allocation: Allocation = body.allocation ?? { type: 'pending' };
    if (allocation.type === 'fixed' && body.kind === 'group') invalid('fixed allocation is for individual enrollments');
    const validity = body.certificateValidity ?? this.defaultValidity;
    if ((parseDuration(validity) ?? 0) < HOUR) invalid('certificate validity must be at least 1h');
    if (body.trustAnchorsPem !== undefined) {
      let anchors: X509Certificate[] = [];
      try {
        anchors = parsePemCertificates(body.trustAnchorsPem);
      } catch {
        invalid('trust anchors are not PEM certificates');
      }
      if (anchors.length === 0) invalid('no certificate in trustAnchorsPem');
      if (anchors.some((a) => !a.ca)) invalid('a trust anchor is not a CA certificate');
    }
    const revocation = revocationOf(body, invalid);
    // The server will GET these (crl-refresher.ts): the outbound destination policy applies now,
    // and again on every fetch (the name may resolve elsewhere by then).
    for (const u of revocation.crlUrls) await this.destinations.check(u, 'crl');
    const expiresAt = body.expiresAt === undefined ? null : Date.parse(body.expiresAt);
    const decisionUrl = body.decisionWebhookUrl === undefined ? null : (await this.destinations.check(body.decisionWebhookUrl)).url.toString();
    const created = await this.uow.run(ctx, { action: 'enrollment.create' }, async (w) => {
      if (body.deviceId !== undefined) {
        const d = await w.tx.selectFrom('devices').select('id').where('id', '=', body.deviceId).executeTakeFirst();
        if (d === undefined) throw new FleetkeyError('DEVICE_NOT_FOUND', { detail: body.deviceId });
      }
      const id = randomUUID();
      let secret: Buffer | null = null;
      if (body.attestation === 'symmetric') secret = randomBytes(32);
      const decisionSecret = decisionUrl === null ? null : `whsec_${randomBytes(32).toString('base64url')}`;
      const row: EnrollmentRow = {
        id,
        label: body.label,
        kind: body.kind,
        attestation: body.attestation,
        device_id: body.deviceId ?? null,
        idevid_fingerprint: body.idevidFingerprint ?? null,
        ek_sha256: body.ekPublicSha256 ?? null,
        trust_pem: body.trustAnchorsPem ?? null,
        secret_sealed: secret === null ? null : this.box.seal(secret, secretAad(id)),
        allocation: JSON.stringify(allocation),
        tags: JSON.stringify(body.tags ?? {}),
        validity,
        reprovisioning: body.reprovisioning ?? 'keep',
        enabled: 1,
        expires_at: expiresAt,
        max_devices: body.maxDevices ?? null,
        created_at: w.now,
        updated_at: w.now,
        decision_url: decisionUrl,
        decision_secret_sealed: decisionSecret === null ? null : this.box.seal(Buffer.from(decisionSecret), decisionAad(id)),
        revocation: revocation.policy,
        crl_urls: JSON.stringify(revocation.crlUrls),
      };
      await w.tx.insertInto('enrollments').values(row).execute();
      w.subject(`enrollment:${id}`);
      w.note({ label: row.label, kind: row.kind, attestation: row.attestation, deviceId: row.device_id, allocation: allocation.type, revocation: row.revocation });
      const key = secret?.toString('base64');
      secret?.fill(0);
      return { enrollment: toEnrollment(row, 0), ...(key === undefined ? {} : { groupKey: key }), ...(decisionSecret === null ? {} : { decisionSecret }) };
    });
    this.onCreated?.(created.enrollment.id);
    return created;
  }

  async list(): Promise<Enrollment[]> {
    const rows = await this.store.db.selectFrom('enrollments').selectAll().orderBy('created_at').execute();
    const counts = await this.counts();
    return rows.map((r) => toEnrollment(r, counts.get(r.id) ?? 0));
  }

  async show(id: string): Promise<Enrollment> {
    const row = await this.get(this.store.db, id);
    return toEnrollment(row, (await this.counts()).get(id) ?? 0);
  }

  async setEnabled(ctx: OpContext, id: string, enabled: boolean): Promise<Enrollment> {
    return this.uow.run(ctx, { action: enabled ? 'enrollment.enable' : 'enrollment.disable', subject: `enrollment:${id}` }, async (w) => {
      const row = await this.get(w.tx, id);
      await w.tx.updateTable('enrollments').set({ enabled: enabled ? 1 : 0, updated_at: w.now }).where('id', '=', id).execute();
      // Inside the transaction every read goes through it: SQLite has one connection, held here.
      return toEnrollment({ ...row, enabled: enabled ? 1 : 0 }, (await this.counts(w.tx)).get(id) ?? 0);
    });
  }

  /** The per-device key of a symmetric group: HMAC-SHA256(groupKey, deviceId). Audited. */
  async deriveKey(ctx: OpContext, id: string, deviceId: string): Promise<DerivedKey> {
    return this.uow.run(ctx, { action: 'enrollment.derive_key', subject: `enrollment:${id}` }, async (w) => {
      const row = await this.get(w.tx, id);
      if (row.attestation !== 'symmetric' || row.kind !== 'group') throw new FleetkeyError('ENROLLMENT_INVALID', { detail: 'not a symmetric group' });
      const device = await w.tx.selectFrom('devices').select('id').where('id', '=', deviceId).executeTakeFirst();
      if (device === undefined) throw new FleetkeyError('DEVICE_NOT_FOUND', { detail: deviceId });
      // The derived key is the device's evidence (issue 10): handed out again once the device was
      // admitted, it re-admits the device for whoever holds it. The factory needs it before that;
      // after, only a role that may change a device's evidence (admin) gets it.
      if (ctx.actor.kind === 'token' && !allows(ctx.actor.role, 'device:evidence')) {
        const admitted = await w.tx.selectFrom('provisioning_records').select('device_id').where('device_id', '=', deviceId).executeTakeFirst();
        if (admitted !== undefined) throw new FleetkeyError('FORBIDDEN', { detail: `device ${deviceId} was admitted already; role ${ctx.actor.role} derives keys for devices not yet admitted only` });
      }
      const group = this.secret(row);
      try {
        const key = deriveDeviceKey(group, deviceId);
        w.note({ deviceId });
        const out = { deviceId, deviceKey: key.toString('base64') };
        key.fill(0);
        return out;
      } finally {
        group.fill(0);
      }
    });
  }

  async get(db: Tx | Store['db'], id: string): Promise<EnrollmentRow> {
    const row = await db.selectFrom('enrollments').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) throw new FleetkeyError('ENROLLMENT_NOT_FOUND', { detail: id });
    return row;
  }

  /** The enrollment's symmetric secret (group key, or an individual device key). Callers zero it. */
  secret(row: EnrollmentRow): Buffer {
    if (row.secret_sealed === null) throw new FleetkeyError('ENROLLMENT_INVALID', { detail: 'no symmetric key' });
    return this.box.open(row.secret_sealed, secretAad(row.id));
  }

  /** SHA-256 of the EK public area as the device sends it (TPM2B_PUBLIC bytes). */
  static ekHash(ekPublic: Buffer): string {
    return createHash('sha256').update(ekPublic).digest('hex');
  }

  private async counts(db: Tx | Store['db'] = this.store.db): Promise<Map<string, number>> {
    const rows = await db
      .selectFrom('provisioning_records')
      .select(['enrollment_id', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy('enrollment_id')
      .execute();
    return new Map(rows.map((r) => [r.enrollment_id, Number(r.n)]));
  }
}
