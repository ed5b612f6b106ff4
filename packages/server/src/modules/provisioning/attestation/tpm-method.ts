import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { checkAkAttributes, computeName, makeCredential, parseTpm2bPublic, tpmPublicToKeyObject, verifyEkCertificate, type TpmPublic } from '@fleetkey/crypto';
import type { TpmChallenge } from '@fleetkey/protocol';
import type { Work } from '../../../context/unit-of-work.js';
import type { EnrollmentRow } from '../../../store/schema.js';
import { EnrollmentService, parsePemCertificates } from '../enrollment-service.js';
import { matchEnrollment } from '../enrollment-match.js';
import { checkEvidence, tpmEvidence, type Evidence } from '../evidence.js';
import { AttestationMethod, refused, type Attested } from './method.js';

export interface TpmStart {
  readonly deviceId: string;
  readonly ekPublic: Buffer;
  readonly ekCertificate: Buffer | undefined;
  readonly akPublic: Buffer;
}
export interface TpmFinish {
  readonly challengeId: string;
  readonly secret: Buffer;
}

const CHALLENGE_TTL_MS = 5 * 60_000;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest();

/**
 * TPM 2.0 attestation by credential activation (TPM 2.0 Part 1 §24): the server encrypts a fresh
 * secret to the EK, bound to the AK's name; only the TPM holding that EK, with that AK loaded, can
 * recover it (TPM2_ActivateCredential). The EK is trusted through its manufacturer certificate
 * (group) or pinned by hash (individual); the AK must be a restricted signing key fixed to the TPM.
 */
export class TpmMethod extends AttestationMethod<TpmStart, TpmFinish> {
  readonly type = 'tpm' as const;

  override async challenge(w: Work, s: TpmStart): Promise<TpmChallenge> {
    let ek: TpmPublic;
    let ak: TpmPublic;
    let ekKeySha256: string;
    try {
      ek = parseTpm2bPublic(s.ekPublic);
      ak = parseTpm2bPublic(s.akPublic);
      checkAkAttributes(ak);
      // The EK is bound by its key, not by the bytes that carried it: an exponent of 0 and of
      // 65537 are one RSA key (TPM 2.0 Part 2 §12.2.3.5), and authPolicy or objectAttributes take
      // no part in MakeCredential, so one TPM could present its EK in many spellings.
      ekKeySha256 = createHash('sha256').update(tpmPublicToKeyObject(ek).export({ type: 'spki', format: 'der' })).digest('hex');
    } catch (e) {
      throw refused(`TPM structures refused: ${(e as { detail?: string }).detail ?? (e as Error).message}`);
    }
    const ekHash = EnrollmentService.ekHash(s.ekPublic);
    let why = 'no EK certificate';
    const certified = (g: EnrollmentRow): boolean => {
      if (s.ekCertificate === undefined || g.trust_pem === null) return false;
      const certs = parsePemCertificates(g.trust_pem);
      try {
        verifyEkCertificate({
          ekCertDer: s.ekCertificate,
          ekPublic: ek,
          roots: certs.filter((c) => c.subject === c.issuer),
          intermediates: certs.filter((c) => c.subject !== c.issuer),
          time: new Date(w.now),
        });
        return true;
      } catch (e) {
        why = `EK certificate refused: ${(e as { detail?: string }).detail ?? (e as Error).message}`;
        return false;
      }
    };
    const enrollment = await matchEnrollment(w, 'tpm', s.deviceId, certified).catch(() => {
      throw refused(why);
    });
    if (enrollment.kind === 'individual') {
      // An individual enrollment authenticates the EK by its pin, its TPM roots, or both; never by neither.
      if (enrollment.ek_sha256 === null && enrollment.trust_pem === null) throw refused(`enrollment ${enrollment.id} authenticates no EK`);
      if (enrollment.ek_sha256 !== null && enrollment.ek_sha256 !== ekHash) throw refused('EK differs from the one pinned in the enrollment');
      if (enrollment.trust_pem !== null && !certified(enrollment)) throw refused(why);
    }
    // Refused before the TPM works for nothing; the finish step checks again under the device's lock.
    const akName = computeName(ak);
    const evidence = tpmEvidence(ekHash, ekKeySha256, akName.toString('hex'), s.akPublic);
    await checkEvidence(w, s.deviceId, evidence, enrollment.id);
    const secret = randomBytes(32);
    try {
      const out = makeCredential({ ekPublic: ek, akName, credential: secret });
      const id = randomUUID();
      await w.tx
        .insertInto('provisioning_challenges')
        .values({
          id,
          kind: 'tpm',
          device_id: s.deviceId,
          enrollment_id: enrollment.id,
          secret_sha256: sha256(secret).toString('hex'),
          expires_at: w.now + CHALLENGE_TTL_MS,
          used_at: null,
          created_at: w.now,
          evidence: JSON.stringify(evidence),
        })
        .execute();
      w.note({ challengeId: id, enrollmentId: enrollment.id, ekSha256: ekHash, akName: evidence.seen['akName'] });
      return {
        challengeId: id,
        credentialBlob: out.credentialBlob.toString('base64'),
        encryptedSecret: out.encryptedSecret.toString('base64'),
        expiresAt: new Date(w.now + CHALLENGE_TTL_MS).toISOString(),
      };
    } finally {
      secret.fill(0);
    }
  }

  override async attest(w: Work, f: TpmFinish): Promise<Attested> {
    const c = await w.tx.selectFrom('provisioning_challenges').selectAll().where('id', '=', f.challengeId).where('kind', '=', 'tpm').executeTakeFirst();
    if (c === undefined || c.device_id === null || c.enrollment_id === null || c.secret_sha256 === null) throw refused('unknown challenge');
    if (c.used_at !== null) throw refused('challenge already used');
    if (c.expires_at <= w.now) throw refused('challenge expired');
    // Single use even under concurrency: only one finish can flip used_at.
    const res = await w.tx.updateTable('provisioning_challenges').set({ used_at: w.now }).where('id', '=', c.id).where('used_at', 'is', null).executeTakeFirst();
    if (res.numUpdatedRows !== 1n) throw refused('challenge already used');
    // Used up whatever follows: a wrong proof, or any later refusal, must not leave it open for another guess.
    w.keepIfRefused({ apply: (tx) => tx.updateTable('provisioning_challenges').set({ used_at: w.now }).where('id', '=', c.id).where('used_at', 'is', null).execute() });
    if (!timingSafeEqual(sha256(f.secret), Buffer.from(c.secret_sha256, 'hex'))) throw refused('credential proof does not match');
    if (c.evidence === null) throw refused('challenge carries no evidence');
    const evidence = JSON.parse(c.evidence) as Evidence;
    const enrollment = await w.tx.selectFrom('enrollments').selectAll().where('id', '=', c.enrollment_id).executeTakeFirstOrThrow();
    return { deviceId: c.device_id, enrollment, method: 'tpm', evidence, forbiddenKeys: [], detail: { challengeId: c.id, ekSha256: evidence.identity['ekSha256'] } };
  }
}
