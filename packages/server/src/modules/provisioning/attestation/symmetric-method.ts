import { createHash } from 'node:crypto';
import { deriveDeviceKey, verifySasToken, type ReplayGuard } from '@fleetkey/crypto';
import type { Work } from '../../../context/unit-of-work.js';
import type { EnrollmentService } from '../enrollment-service.js';
import { matchEnrollment } from '../enrollment-match.js';
import { symmetricEvidence, type Evidence } from '../evidence.js';
import { AttestationMethod, refused, type Attested } from './method.js';

export interface SymmetricEvidence {
  readonly deviceId: string;
  readonly token: string;
}

/** Tokens live at most this long: long enough for clock skew, short enough to bound replay. */
const MAX_TOKEN_LIFETIME_S = 3600;

/**
 * Symmetric-key attestation: a SAS token over `provision/<deviceId>` signed with the device key —
 * an individual enrollment's key, or HMAC-SHA256(groupKey, deviceId) for a group. Signatures are
 * compared in constant time; each token is accepted once (the replay guard).
 */
export class SymmetricMethod extends AttestationMethod<never, SymmetricEvidence> {
  readonly type = 'symmetric' as const;

  constructor(
    private readonly enrollments: EnrollmentService,
    private readonly replay: ReplayGuard,
  ) {
    super();
  }

  /**
   * The in-memory guard, then the database: a token's id is recorded in the provisioning
   * transaction (provisioning_challenges, kind `sas`, kept until the token expires), so a token
   * stays used across restarts and server nodes, and commits with the admission it made. A
   * concurrent twin waits for that commit and then finds the row.
   */
  #replayIn(w: Work, deviceId: string): ReplayGuard {
    return {
      markUsed: async (id, expiresAt, now) => {
        const inMemory = await this.replay.markUsed(id, expiresAt, now);
        if (inMemory !== 'accepted') return inMemory;
        const r = await w.tx
          .insertInto('provisioning_challenges')
          .values({ id: createHash('sha256').update(id).digest('hex'), kind: 'sas', device_id: deviceId, enrollment_id: null, secret_sha256: null, expires_at: expiresAt * 1000, used_at: w.now, created_at: w.now, evidence: null })
          .onConflict((oc) => oc.column('id').doNothing())
          .executeTakeFirst();
        return r.numInsertedOrUpdatedRows === 1n ? 'accepted' : 'replayed';
      },
    };
  }

  override async attest(w: Work, e: SymmetricEvidence): Promise<Attested> {
    let reason = 'no enrollment key verifies the token';
    let evidence: Evidence | undefined;
    const check = async (key: Buffer, derivation: 'group' | 'individual'): Promise<boolean> => {
      const r = await verifySasToken(e.token, { expectedResource: `provision/${e.deviceId}`, key, now: new Date(w.now), maxLifetimeSeconds: MAX_TOKEN_LIFETIME_S, replay: this.#replayIn(w, e.deviceId) });
      if (!r.ok) reason = `token ${r.reason}`;
      else evidence = symmetricEvidence(key, derivation);
      return r.ok;
    };
    const enrollment = await matchEnrollment(w, 'symmetric', e.deviceId, async (g) => {
      const group = this.enrollments.secret(g);
      const key = deriveDeviceKey(group, e.deviceId);
      try {
        return await check(key, 'group');
      } finally {
        group.fill(0);
        key.fill(0);
      }
    }).catch(() => {
      throw refused(reason);
    });
    if (enrollment.kind === 'individual') {
      const key = this.enrollments.secret(enrollment);
      try {
        if (!(await check(key, 'individual'))) throw refused(reason);
      } finally {
        key.fill(0);
      }
    }
    if (evidence === undefined) throw refused(reason);
    return { deviceId: e.deviceId, enrollment, method: 'symmetric', evidence, forbiddenKeys: [], detail: {} };
  }
}
