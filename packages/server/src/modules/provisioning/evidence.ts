import { createHash, createHmac, randomUUID, type X509Certificate } from 'node:crypto';
import type { AttestationType } from '@fleetkey/protocol';
import type { Work } from '../../context/unit-of-work.js';
import { isUniqueViolation } from '../../store/open-store.js';
import type { DeviceEvidenceRow } from '../../store/schema.js';
import { canonicalJson } from '../audit/canonical-json.js';
import { refused } from './attestation/method.js';

/**
 * What proved a device (issue 10): the physical identity behind an attestation. The first
 * admission records it; every later admission of that device must present the same one, and one
 * evidence proves one device. Never a secret: hashes, names, serials.
 */
export interface Evidence {
  readonly method: AttestationType;
  /** The physical secret the evidence proves, `<method>:<hex>`: one device per key. */
  readonly key: string;
  /** What must match exactly on every later admission. */
  readonly identity: Readonly<Record<string, string>>;
  /** Recorded, not compared: it may change between admissions. */
  readonly seen: Readonly<Record<string, string>>;
  /** TPM only: the AK's TPM2B_PUBLIC (base64), kept so quotes can be verified (issue 13). */
  readonly akPublic?: string;
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/**
 * TPM: the EK, by its public area's SHA-256 and its key's. The AK is only recorded: the device makes a fresh one
 * under the EK for each provisioning (tpm2_createak), and credential activation (TPM 2.0 Part 1
 * §24) already proves that AK lives in the TPM holding this EK.
 */
export function tpmEvidence(ekSha256: string, ekKeySha256: string, akName: string, akPublic?: Buffer): Evidence {
  // Keyed by the EK's key (SHA-256 of its SubjectPublicKeyInfo), not by its public area's bytes:
  // the same key re-encoded (RSA exponent 0 written as 65537, another authPolicy) is the same TPM.
  const base: Evidence = { method: 'tpm', key: `tpm:${ekKeySha256}`, identity: { ekSha256, ekKeySha256 }, seen: { akName } };
  return akPublic === undefined ? base : { ...base, akPublic: akPublic.toString('base64') };
}

/**
 * X.509: the IDevID (IEEE 802.1AR §8.4) by issuer + serial and the key it certifies. The issuer is
 * bound through the certificate's SHA-256 (its DER holds the issuer Name bytes): Node's text form
 * of a DN is kept for reading only, since its formatting may change with OpenSSL.
 */
export function x509Evidence(idevid: X509Certificate): Evidence {
  const spkiSha256 = sha256(idevid.publicKey.export({ type: 'spki', format: 'der' }));
  return {
    method: 'x509',
    key: `x509:${spkiSha256}`,
    identity: { idevidSha256: sha256(idevid.raw), serial: idevid.serialNumber.toLowerCase(), spkiSha256 },
    seen: { issuer: idevid.issuer.replaceAll('\n', ',') },
  };
}

/**
 * Symmetric: a key id, HMAC-SHA256(deviceKey, label): names the key without revealing it, so a
 * device admitted with one group's derived key is not re-admitted with another group's.
 */
export function symmetricEvidence(deviceKey: Buffer, derivation: 'group' | 'individual'): Evidence {
  const deviceKeyId = createHmac('sha256', deviceKey).update('fleetkey evidence key id v1').digest('hex');
  return { method: 'symmetric', key: `symmetric:${deviceKeyId}`, identity: { deviceKeyId, derivation }, seen: {} };
}

function describeEvidence(method: string, identity: Readonly<Record<string, string>>): string {
  if (method === 'tpm') return `tpm EK ${identity['ekSha256']?.slice(0, 16)}…`;
  if (method === 'x509') return `x509 IDevID serial ${identity['serial']}`;
  return `symmetric key id ${identity['deviceKeyId']?.slice(0, 16)}…`;
}

const view = (e: { method: string; identity: Readonly<Record<string, string>> }) => ({ method: e.method, identity: e.identity });
const recordedView = (r: DeviceEvidenceRow) => ({ method: r.method, identity: JSON.parse(r.identity) as Record<string, string> });

/**
 * Admission control by evidence, for a device about to be admitted (under its lock when it
 * exists): its current evidence must be the one presented. A device with none may take it,
 * unless that evidence is bound to another device, the device was provisioned by another method
 * before evidence was recorded, or it was manufactured with one of our IDevIDs (still valid), has
 * never been admitted, and this is not it. A refusal is kept past the rollback: audited as a
 * takeover attempt with the precise reason and published as `device.evidence_mismatch`.
 */
export async function checkEvidence(w: Work, deviceId: string, presented: Evidence, enrollmentId: string): Promise<DeviceEvidenceRow | undefined> {
  const current = await w.tx.selectFrom('device_evidence').selectAll().where('device_id', '=', deviceId).where('reset_at', 'is', null).executeTakeFirst();
  const mine = describeEvidence(presented.method, presented.identity);
  if (current !== undefined) {
    if (current.method === presented.method && current.identity === canonicalJson(presented.identity)) return current;
    const recorded = recordedView(current);
    mismatch(w, deviceId, presented, enrollmentId, `${mine} differs from the one recorded for device ${deviceId} (${describeEvidence(recorded.method, recorded.identity)})`, { recorded });
  }
  const holder = await w.tx.selectFrom('device_evidence').select('device_id').where('evidence_key', '=', presented.key).where('reset_at', 'is', null).executeTakeFirst();
  if (holder !== undefined) mismatch(w, deviceId, presented, enrollmentId, `${mine} is bound to device ${holder.device_id}`, { boundTo: holder.device_id });
  // After an operator's reset (a history exists) the operator has decided what comes next.
  const history = await w.tx.selectFrom('device_evidence').select('id').where('device_id', '=', deviceId).executeTakeFirst();
  if (history !== undefined) return undefined;
  // A device provisioned before evidence was recorded (migration 009): only what proved it then
  // may re-admit it, and that admission records the evidence. A method alone is not enough: any
  // TPM a group trusts names whatever device id it likes (issue 10 defect 1).
  const earlier = await w.tx.selectFrom('provisioning_records').select(['method', 'enrollment_id']).where('device_id', '=', deviceId).executeTakeFirst();
  if (earlier !== undefined) {
    if (earlier.method !== presented.method) {
      mismatch(w, deviceId, presented, enrollmentId, `device ${deviceId} was provisioned by ${earlier.method} before its evidence was recorded; ${mine} presented`, {
        recorded: { method: earlier.method, identity: {} },
      });
    }
    const why = await differsFromLegacyProof(w, deviceId, presented, enrollmentId, earlier.enrollment_id);
    if (why !== null) mismatch(w, deviceId, presented, enrollmentId, `device ${deviceId} was provisioned before its evidence was recorded ${why.text}; ${mine} presented`, { recorded: why.recorded });
    return undefined;
  }
  // A device manufactured with our birth certificate is first admitted by it, not by whoever asks first.
  const idevids = await w.tx.selectFrom('certificates').select(['serial', 'public_key_sha256']).where('device_id', '=', deviceId).where('kind', '=', 'idevid').where('status', '=', 'valid').execute();
  if (idevids.length > 0 && !(presented.method === 'x509' && idevids.some((c) => c.public_key_sha256 === presented.identity['spkiSha256']))) {
    const serials = idevids.map((c) => c.serial).join(', ');
    mismatch(w, deviceId, presented, enrollmentId, `device ${deviceId} was manufactured with IDevID ${serials}; ${mine} presented`, { recorded: { method: 'x509', identity: { idevidSerials: serials } } });
  }
  return undefined;
}

const detailOf = (row: { detail: string | null } | undefined): Record<string, unknown> => (row?.detail == null ? {} : (JSON.parse(row.detail) as Record<string, unknown>));

/**
 * For a device admitted before evidence was recorded: why `presented` is not what admitted it
 * then, or null when it is. The audit log names it: a TPM admission's challenge (its entry notes
 * the EK's public-area SHA-256), an X.509 admission's IDevID fingerprint; a symmetric device key
 * is the one its enrollment derives, so only that enrollment re-admits it. Nothing on record
 * refuses (fail closed).
 */
async function differsFromLegacyProof(
  w: Work,
  deviceId: string,
  presented: Evidence,
  enrollmentId: string,
  recordedEnrollmentId: string,
): Promise<{ text: string; recorded: object } | null> {
  if (presented.method === 'symmetric') {
    if (enrollmentId === recordedEnrollmentId) return null;
    return { text: `by enrollment ${recordedEnrollmentId}'s key`, recorded: { method: 'symmetric', identity: {}, enrollmentId: recordedEnrollmentId } };
  }
  const subject = `device:${deviceId}`;
  const entries = (action: string) =>
    w.tx.selectFrom('audit_log').select('detail').where('action', '=', action).where('subject', '=', subject).where('outcome', '=', 'success').orderBy('seq', 'desc');
  const last = detailOf(await entries(`provisioning.${presented.method}`).limit(1).executeTakeFirst());
  if (presented.method === 'x509') {
    const idevid = typeof last['idevid'] === 'string' ? last['idevid'] : null;
    if (idevid !== null && idevid === presented.identity['idevidSha256']) return null;
    return { text: `by IDevID ${idevid ?? '(none on record)'}`, recorded: { method: 'x509', identity: idevid === null ? {} : { idevidSha256: idevid } } };
  }
  const challengeId = last['challengeId'];
  let ek: string | null = null;
  if (typeof challengeId === 'string') {
    for (const row of await entries('provisioning.tpm.challenge').execute()) {
      const d = detailOf(row);
      if (d['challengeId'] === challengeId && typeof d['ekSha256'] === 'string') {
        ek = d['ekSha256'];
        break;
      }
    }
  }
  if (ek !== null && ek === presented.identity['ekSha256']) return null;
  return { text: `by tpm EK ${ek === null ? '(none on record)' : `${ek.slice(0, 16)}…`}`, recorded: { method: 'tpm', identity: ek === null ? {} : { ekSha256: ek } } };
}

function mismatch(w: Work, deviceId: string, presented: Evidence, enrollmentId: string, reason: string, about: { recorded?: object; boundTo?: string }): never {
  const facts = { presented: view(presented), recorded: about.recorded ?? null, ...(about.boundTo === undefined ? {} : { boundTo: about.boundTo }) };
  w.keepIfRefused({
    detail: { attempt: 'takeover', enrollmentId, ...facts },
    events: [{ type: 'device.evidence_mismatch', subject: `device:${deviceId}`, payload: { deviceId, enrollmentId, reason, ...facts } }],
  });
  throw refused(`takeover attempt: ${reason}`);
}

/** Records the evidence of an admission that is going ahead (after checkEvidence, same transaction). */
export async function recordEvidence(w: Work, deviceId: string, presented: Evidence, enrollmentId: string, current: DeviceEvidenceRow | undefined): Promise<void> {
  const seen = JSON.stringify(presented.seen);
  if (current !== undefined) {
    // A re-admission activates a new AK: quotes are verified with the latest one (issue 13).
    await w.tx.updateTable('device_evidence').set({ seen, last_seen_at: w.now, ...(presented.akPublic === undefined ? {} : { ak_public: presented.akPublic }) }).where('id', '=', current.id).execute();
    return;
  }
  try {
    await w.tx
      .insertInto('device_evidence')
      .values({
        id: randomUUID(),
        device_id: deviceId,
        method: presented.method,
        evidence_key: presented.key,
        identity: canonicalJson(presented.identity),
        seen,
        enrollment_id: enrollmentId,
        recorded_at: w.now,
        last_seen_at: w.now,
        reset_at: null,
        reset_reason: null,
        reset_actor: null,
        ak_public: presented.akPublic ?? null,
      })
      .execute();
  } catch (e) {
    // A racing first admission of this device, or of this evidence for another device, committed first.
    if (isUniqueViolation(e)) mismatch(w, deviceId, presented, enrollmentId, `${describeEvidence(presented.method, presented.identity)} lost a race: device ${deviceId} or this evidence was bound concurrently`, {});
    throw e;
  }
  w.note({ evidence: { ...view(presented), recorded: 'first admission' } });
}
