import {
  buildOcspError,
  buildOcspResponse,
  certIdMatchesIssuer,
  parseOcspRequest,
  type CrlReason,
  type OcspSingleResponse,
} from '@fleetkey/crypto';
import type { Clock } from '../../context/clock.js';
import type { Store } from '../../store/open-store.js';
import type { Authorities, Authority } from './authorities.js';

/**
 * OCSP (RFC 6960) over the certificate store. Answers are signed by the issuing CA itself
 * (§2.6 allows the CA as responder), so clients need no extra delegation certificate. A serial
 * we never issued from that issuer is `unknown` (§2.2), never `good`.
 */
export class OcspResponder {
  constructor(
    private readonly store: Store,
    private readonly authorities: Authorities,
    private readonly clock: Clock,
    private readonly validityMs: number,
  ) {}

  async respond(requestDer: Buffer): Promise<Buffer> {
    let request;
    try {
      request = parseOcspRequest(requestDer);
    } catch {
      return buildOcspError('malformedRequest');
    }
    const first = request.certIds[0];
    const issuer: Authority | undefined =
      first === undefined ? undefined : this.authorities.all().find((a) => a.signer !== undefined && certIdMatchesIssuer(first, a.certificate));
    // §2.3: a request about certificates this responder has no authority for is "unauthorized".
    if (issuer?.signer === undefined) return buildOcspError('unauthorized');
    const now = this.clock.now();
    const thisUpdate = new Date(Math.floor(now / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + this.validityMs);
    const responses: OcspSingleResponse[] = [];
    for (const certId of request.certIds) {
      const ours = certIdMatchesIssuer(certId, issuer.certificate);
      const row = ours
        ? await this.store.db
            .selectFrom('certificates')
            .select(['status', 'revoked_at', 'revocation_reason', 'grace_until', 'issuer_id'])
            .where('serial', '=', certId.serialHex.toLowerCase())
            .executeTakeFirst()
        : undefined;
      if (row === undefined || row.issuer_id !== issuer.row.id) {
        responses.push({ certId, status: 'unknown', thisUpdate, nextUpdate });
      } else if (row.status === 'revoked') {
        responses.push({ certId, status: 'revoked', revokedAt: new Date(row.revoked_at ?? now), reason: (row.revocation_reason ?? 'unspecified') as CrlReason, thisUpdate, nextUpdate });
      } else if (row.status === 'superseded' && (row.grace_until ?? 0) <= now) {
        responses.push({ certId, status: 'revoked', revokedAt: new Date(row.grace_until ?? now), reason: 'superseded', thisUpdate, nextUpdate });
      } else {
        responses.push({ certId, status: 'good', thisUpdate, nextUpdate });
      }
    }
    return buildOcspResponse({
      responderCertificate: issuer.certificate,
      signer: issuer.signer,
      producedAt: thisUpdate,
      responses,
      ...(request.nonce === undefined ? {} : { nonce: request.nonce }),
    });
  }
}
