import { createHash, X509Certificate } from 'node:crypto';
import { FleetkeyError, type DeviceStatus } from '@fleetkey/protocol';
import { issueDeviceCertificate, NO_WELL_DEFINED_EXPIRATION, parseAndVerifyCsr, toPem, type CsrKeyType } from '@fleetkey/crypto';
import type { Work } from '../../context/unit-of-work.js';
import type { CertificateRow } from '../../store/schema.js';
import type { Authorities } from './authorities.js';

export const HOUR = 3_600_000;
/** RFC 5280 §4.1.2.5 leaves skew to policy; 5 minutes covers devices with poorly kept clocks. */
export const BACKDATE_MS = 5 * 60_000;

/**
 * What a caller (an enrollment method, renewal, the operator command) may ask of the CA. The
 * caller decides *whether* to issue; these constraints say *what*; the pipeline below is the only
 * code that signs (step-ca's AuthorizeSign → signX509).
 */
export interface IssuanceConstraints {
  /** Recorded in the certificate's private extension and the store, so renewal finds its policy. */
  readonly method: string;
  readonly kind: 'operational' | 'idevid';
  /** `unlimited`: notAfter 99991231235959Z (IDevIDs only, RFC 5280 §4.1.2.5, IEEE 802.1AR). */
  readonly validityMs: number | 'unlimited';
  readonly deviceStatuses: readonly DeviceStatus[];
  readonly allowedKeyTypes?: readonly CsrKeyType[];
  /** SHA-256 of SPKIs that must not be certified (the device's IDevID key, the key being renewed). */
  readonly forbiddenKeys?: readonly string[];
  /** A certificate this one replaces: it becomes `superseded`, authenticating until `graceMs` passes. */
  readonly supersedes?: { readonly serial: string; readonly graceMs: number };
}

export interface IssuedRecord {
  readonly serial: string;
  readonly fingerprint: string;
  readonly deviceId: string;
  readonly kind: 'operational' | 'idevid';
  readonly method: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly der: Buffer;
  readonly pem: string;
  readonly chainPem: string;
  readonly issuerId: string;
}

export const spkiSha256 = (spki: Buffer): string => createHash('sha256').update(spki).digest('hex');

/**
 * The one signing pipeline, in a fixed order, inside the caller's unit of work:
 * verify CSR (proof of possession) → key policy → device eligibility → key freshness →
 * validity policy → sign from the issuer template (our profile, nothing copied from the CSR) →
 * supersede → store → event. The audit entry is written by the unit of work with the notes below.
 */
export async function signDeviceCertificate(
  w: Work,
  authorities: Authorities,
  deviceId: string,
  csrInput: Buffer | string,
  c: IssuanceConstraints,
): Promise<IssuedRecord> {
  // 1. Parse and verify the CSR signature: the requester holds the private key (RFC 2986 §3).
  const allowed = c.allowedKeyTypes ?? ['p256', 'p384'];
  const csr = parseAndVerifyCsr(csrInput, { allowEd25519: allowed.includes('ed25519'), allowRsa: allowed.includes('rsa') });
  if (!allowed.includes(csr.keyType)) throw new FleetkeyError('CSR_KEY_NOT_ALLOWED', { detail: `${csr.keyType} not allowed by ${c.method}` });

  // 2. The device must exist and be in a status the caller's policy allows.
  const device = await w.tx.selectFrom('devices').select(['id', 'status']).where('id', '=', deviceId).executeTakeFirst();
  if (device === undefined) throw new FleetkeyError('DEVICE_NOT_FOUND', { detail: deviceId });
  if (!c.deviceStatuses.includes(device.status as DeviceStatus)) {
    throw new FleetkeyError('CERT_DEVICE_NOT_ELIGIBLE', { detail: `device ${deviceId} is ${device.status}` });
  }

  // 3. A new certificate needs a key never certified before: renewal must rotate the key, and an
  //    operational certificate must not reuse the birth-certificate key.
  const keyHash = spkiSha256(csr.spkiDer);
  if (c.forbiddenKeys?.includes(keyHash)) throw new FleetkeyError('CERT_KEY_REUSED', { detail: 'forbidden key' });
  const reused = await w.tx.selectFrom('certificates').select('serial').where('public_key_sha256', '=', keyHash).executeTakeFirst();
  if (reused !== undefined) throw new FleetkeyError('CERT_KEY_REUSED', { detail: `key already in certificate ${reused.serial}` });

  // 4. Validity: at least an hour (shorter would outrun CRL/OCSP caching), never past the issuer;
  //    a birth certificate may instead have no well-defined expiration, bounded by its chain.
  if (c.validityMs === 'unlimited' ? c.kind !== 'idevid' : !Number.isFinite(c.validityMs) || c.validityMs < HOUR) {
    throw new FleetkeyError('CERT_VALIDITY_INVALID', { detail: `validity ${c.validityMs} is under 1h, or unlimited for a certificate that is not an IDevID` });
  }
  const issuer = authorities.active(c.kind === 'idevid' ? 'manufacturing' : 'issuing');
  const notBefore = new Date(w.now - BACKDATE_MS);
  const notAfter = c.validityMs === 'unlimited' ? NO_WELL_DEFINED_EXPIRATION : new Date(Math.min(w.now + c.validityMs, issuer.row.not_after));

  // 5. Sign. The template fixes subject, SAN, EKU, KU, AKI/SKI, CRL DP, AIA and the method extension.
  const template = issuer.template;
  if (template === undefined) throw new FleetkeyError('CERT_ISSUER_INVALID', { detail: 'issuer template not ready' });
  const issued = await issueDeviceCertificate(template, {
    deviceId,
    spkiDer: csr.spkiDer,
    notBefore,
    notAfter,
    method: c.method,
    kind: c.kind,
    clockSkewMs: 0,
  });
  const cert = new X509Certificate(issued.der);

  // 6. Supersede the certificate this one replaces.
  if (c.supersedes !== undefined) {
    const res = await w.tx
      .updateTable('certificates')
      .set({ status: 'superseded', superseded_by: issued.serialHex, grace_until: w.now + c.supersedes.graceMs })
      .where('serial', '=', c.supersedes.serial)
      .where('status', '=', 'valid')
      .executeTakeFirst();
    if (res.numUpdatedRows !== 1n) throw new FleetkeyError('CONFLICT', { detail: `certificate ${c.supersedes.serial} changed concurrently` });
    await w.emit('certificate.superseded', `device:${deviceId}`, {
      serial: c.supersedes.serial,
      deviceId,
      supersededBy: issued.serialHex,
      graceUntil: new Date(w.now + c.supersedes.graceMs).toISOString(),
    });
  }

  // 7. Record it: every certificate the CA signs is in the store, in the same transaction.
  const row: CertificateRow = {
    serial: issued.serialHex,
    fingerprint: issued.fingerprintSha256,
    device_id: deviceId,
    kind: c.kind,
    issuer_id: issuer.row.id,
    method: c.method,
    public_key_sha256: keyHash,
    not_before: Date.parse(cert.validFrom),
    not_after: Date.parse(cert.validTo),
    status: 'valid',
    superseded_by: null,
    grace_until: null,
    revoked_at: null,
    revocation_reason: null,
    der: issued.der.toString('base64'),
    created_at: w.now,
  };
  await w.tx.insertInto('certificates').values(row).execute();
  w.note({ serial: row.serial, fingerprint: row.fingerprint, kind: c.kind, method: c.method, issuer: issuer.row.id, notAfter: new Date(row.not_after).toISOString() });
  await w.emit('certificate.issued', `device:${deviceId}`, { serial: row.serial, deviceId, kind: c.kind, method: c.method });
  const pem = toPem(issued.der, 'CERTIFICATE');
  return {
    serial: row.serial,
    fingerprint: row.fingerprint,
    deviceId,
    kind: c.kind,
    method: c.method,
    notBefore: row.not_before,
    notAfter: row.not_after,
    der: issued.der,
    pem,
    chainPem: pem + issuer.row.certificate_pem,
    issuerId: issuer.row.id,
  };
}
