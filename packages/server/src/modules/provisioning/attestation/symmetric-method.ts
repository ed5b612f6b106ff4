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

  override async attest(w: Work, e: SymmetricEvidence): Promise<Attested> {
    let reason = 'no enrollment key verifies the token';
    let evidence: Evidence | undefined;
    const check = async (key: Buffer, derivation: 'group' | 'individual'): Promise<boolean> => {
      const r = await verifySasToken(e.token, { expectedResource: `provision/${e.deviceId}`, key, now: new Date(w.now), maxLifetimeSeconds: MAX_TOKEN_LIFETIME_S, replay: this.replay });
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
