import type { X509Certificate } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import type { Signer } from '../signer/signer.js';
import { bitString, enumerated, explicit, generalizedTime, octetString, oid, seq, tlv } from './der.js';
import { CRL_REASONS, type CrlReason } from './crl.js';
import { wholeSeconds } from './device-profile.js';
import { keyIdentifier } from './hash.js';
import { extension } from './issuer-template.js';
import { readIssuer } from './issuer.js';
import { certIdDer, type OcspCertId } from './ocsp-request.js';
import { OID } from './oids.js';
import { signatureAlgorithmId } from './signature-algorithm.js';

export type OcspCertStatus = 'good' | 'revoked' | 'unknown';

export interface OcspSingleResponse {
  readonly certId: OcspCertId;
  readonly status: OcspCertStatus;
  readonly revokedAt?: Date;
  readonly reason?: CrlReason;
  readonly thisUpdate: Date;
  readonly nextUpdate?: Date;
}

export interface BuildOcspResponseOptions {
  /** The CA itself or a delegated responder it issued (RFC 6960 §4.2.2.2). */
  readonly responderCertificate: X509Certificate | Buffer | string;
  readonly signer: Signer;
  readonly producedAt: Date;
  readonly responses: readonly OcspSingleResponse[];
  /** extnValue of the request's nonce extension, echoed verbatim (RFC 8954 §2.1). */
  readonly nonce?: Buffer;
  /**
   * Put the responder certificate in `certs`. Default: only for a delegated responder (not a CA),
   * which clients must check (RFC 6960 §4.2.2.2). A CA answering for its own certificates sends
   * none: `certs` is OPTIONAL (§4.2.1), and Go's x/crypto/ocsp treats any embedded certificate as
   * a delegated responder that must carry id-kp-OCSPSigning, refusing the response otherwise.
   */
  readonly includeCertificate?: boolean;
}

/** OCSPResponseStatus (RFC 6960 §4.2.1) values a responder sends without a signed body. */
export const OCSP_ERROR_STATUS = { malformedRequest: 1, internalError: 2, tryLater: 3, sigRequired: 5, unauthorized: 6 } as const;
export type OcspErrorStatus = keyof typeof OCSP_ERROR_STATUS;

const invalid = (detail: string): never => {
  throw new FleetkeyError('OCSP_RESPONSE_PARAMS_INVALID', { detail });
};

const checkDate = (d: Date | undefined, what: string): Date => {
  if (d === undefined || !Number.isFinite(d.getTime())) return invalid(`${what} missing or invalid`);
  return wholeSeconds(d);
};

function singleResponseDer(r: OcspSingleResponse): Buffer {
  let status: Buffer;
  switch (r.status) {
    case 'good':
      status = Buffer.from([0x80, 0x00]); // [0] IMPLICIT NULL
      break;
    case 'unknown':
      status = Buffer.from([0x82, 0x00]); // [2] IMPLICIT UnknownInfo (NULL)
      break;
    case 'revoked': {
      // [1] IMPLICIT RevokedInfo { revocationTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }
      const info = [generalizedTime(checkDate(r.revokedAt, 'revokedAt'))];
      if (r.reason !== undefined) {
        const value = CRL_REASONS[r.reason];
        if (value === undefined) invalid('unknown reason');
        info.push(explicit(0, enumerated(value)));
      }
      status = tlv(0xa1, ...info);
      break;
    }
    default:
      return invalid('unknown status');
  }
  const thisUpdate = checkDate(r.thisUpdate, 'thisUpdate');
  const parts = [certIdDer(r.certId), status, generalizedTime(thisUpdate)];
  if (r.nextUpdate !== undefined) {
    const nextUpdate = checkDate(r.nextUpdate, 'nextUpdate');
    if (nextUpdate.getTime() <= thisUpdate.getTime()) invalid('nextUpdate must be after thisUpdate');
    parts.push(explicit(0, generalizedTime(nextUpdate)));
  }
  return seq(...parts);
}

/**
 * Builds a signed OCSPResponse (RFC 6960 §4.2.1) around a BasicOCSPResponse: responderID
 * byKey (SHA-1 of the responder key bits, §4.2.2.3), one SingleResponse per requested
 * certId, and the nonce echoed when the request carried one.
 *
 * @throws FleetkeyError OCSP_RESPONSE_PARAMS_INVALID | CERT_ISSUER_INVALID | CERT_SIGNING_FAILED
 */
export async function buildOcspResponse(options: BuildOcspResponseOptions): Promise<Buffer> {
  const responder = readIssuer(options.responderCertificate, options.signer, false);
  if (options.responses.length === 0) invalid('no responses');
  const responseData = [
    tlv(0xa2, octetString(keyIdentifier(responder.spkiDer))), // responderID byKey [2] EXPLICIT KeyHash
    generalizedTime(checkDate(options.producedAt, 'producedAt')),
    seq(...options.responses.map(singleResponseDer)),
  ];
  if (options.nonce !== undefined) responseData.push(explicit(1, seq(extension(OID.ocspNonce, false, options.nonce))));
  const tbs = seq(...responseData); // version v1 is DEFAULT and therefore omitted
  let signature: Buffer;
  try {
    signature = await options.signer.sign(tbs);
  } catch (e) {
    throw new FleetkeyError('CERT_SIGNING_FAILED', { detail: 'signer refused the ResponseData', cause: e });
  }
  const basic = [tbs, signatureAlgorithmId(options.signer.algorithm), bitString(signature)];
  if (options.includeCertificate ?? !responder.certificate.ca) basic.push(explicit(0, seq(responder.der)));
  // OCSPResponse { responseStatus successful(0), responseBytes [0] EXPLICIT { id-pkix-ocsp-basic, OCTET STRING } }
  return seq(enumerated(0), explicit(0, seq(oid(OID.ocspBasic), octetString(seq(...basic)))));
}

/** An unsigned OCSPResponse carrying only an error status (RFC 6960 §2.3, §4.2.1). */
export function buildOcspError(status: OcspErrorStatus): Buffer {
  const value = OCSP_ERROR_STATUS[status];
  if (value === undefined) return invalid('unknown OCSP error status');
  return seq(enumerated(value));
}
