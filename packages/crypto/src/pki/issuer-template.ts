import type { X509Certificate } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import type { Signer } from '../signer/signer.js';
import { DER_TRUE, octetString, oid, seq, tlv } from './der.js';
import { readIssuer, type IssuerInfo } from './issuer.js';
import { OID } from './oids.js';
import { signatureAlgorithmId } from './signature-algorithm.js';

export interface IssuerTemplateOptions {
  readonly issuerCertificate: X509Certificate | Buffer | string;
  readonly signer: Signer;
  /** CRL distribution point (RFC 5280 §4.2.1.13), http URL. */
  readonly crlUrl: string;
  /** OCSP responder URL for AIA (RFC 5280 §4.2.2.1). */
  readonly ocspUrl: string;
  /** Where the issuer certificate can be fetched (AIA caIssuers), optional. */
  readonly caIssuersUrl?: string;
}

/** Everything about device certificates that depends only on the issuer, encoded once. */
export interface IssuerTemplate {
  readonly issuer: IssuerInfo;
  readonly signer: Signer;
  readonly crlUrl: string;
  readonly ocspUrl: string;
  readonly caIssuersUrl: string | undefined;
  /** AlgorithmIdentifier of the signer (both in TBSCertificate and Certificate, RFC 5280 §4.1.1.2). */
  readonly signatureAlgorithmDer: Buffer;
  /** Version [0] v3, then (after the serial) signature AlgorithmIdentifier and issuer Name. */
  readonly versionDer: Buffer;
  readonly algAndIssuerDer: Buffer;
  /** The issuer-constant extensions in profile order: basicConstraints, keyUsage, EKU, AKI, CRLDP, AIA. */
  readonly fixedExtensionsDer: Buffer;
}

/** Extension ::= SEQUENCE { extnID, critical DEFAULT FALSE, extnValue OCTET STRING } (RFC 5280 §4.1). */
export function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), DER_TRUE, octetString(value)) : seq(oid(id), octetString(value));
}

/** The URL must be plain http(s) ASCII: it goes in IA5String and relying parties fetch it unauthenticated. */
export function checkUrl(url: string, what: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new FleetkeyError('CERT_PROFILE_INVALID', { detail: `${what} is not a URL` });
  }
  if ((parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || !/^[\x21-\x7e]+$/.test(url)) {
    throw new FleetkeyError('CERT_PROFILE_INVALID', { detail: `${what} must be an ASCII http(s) URL` });
  }
  return url;
}

const uri = (url: string): Buffer => tlv(0x86, Buffer.from(url, 'latin1')); // GeneralName [6] IA5String

/** CRLDistributionPoints with one fullName URI (RFC 5280 §4.2.1.13). */
export const crlDistributionPointsValue = (url: string): Buffer => seq(seq(tlv(0xa0, tlv(0xa0, uri(url)))));

/** AuthorityInfoAccessSyntax (RFC 5280 §4.2.2.1): OCSP first, then caIssuers when given. */
export function authorityInfoAccessValue(ocspUrl: string, caIssuersUrl: string | undefined): Buffer {
  const items = [seq(oid(OID.adOcsp), uri(ocspUrl))];
  if (caIssuersUrl !== undefined) items.push(seq(oid(OID.adCaIssuers), uri(caIssuersUrl)));
  return seq(...items);
}

/** KeyUsage digitalSignature only: bit 0, seven unused bits (RFC 5280 §4.2.1.3). */
export const KU_DIGITAL_SIGNATURE = Buffer.from([0x03, 0x02, 0x07, 0x80]);

/**
 * Reads the issuer once and pre-encodes everything that does not change per device, so the
 * fast path only writes serial, validity, subject, key, SKI, SAN and method, then signs.
 *
 * @throws FleetkeyError CERT_ISSUER_INVALID (not a CA, or the signer's key is not the
 *   certificate's) | CERT_PROFILE_INVALID (bad URL)
 */
export function createIssuerTemplate(options: IssuerTemplateOptions): IssuerTemplate {
  const issuer = readIssuer(options.issuerCertificate, options.signer);
  const crlUrl = checkUrl(options.crlUrl, 'crlUrl');
  const ocspUrl = checkUrl(options.ocspUrl, 'ocspUrl');
  const caIssuersUrl = options.caIssuersUrl === undefined ? undefined : checkUrl(options.caIssuersUrl, 'caIssuersUrl');
  const signatureAlgorithmDer = signatureAlgorithmId(options.signer.algorithm);
  const fixedExtensionsDer = Buffer.concat([
    extension(OID.basicConstraints, true, seq()), // cA DEFAULT FALSE is omitted in DER (X.690 §11.5)
    extension(OID.keyUsage, true, KU_DIGITAL_SIGNATURE),
    extension(OID.extKeyUsage, false, seq(oid(OID.kpClientAuth))),
    extension(OID.authorityKeyIdentifier, false, seq(tlv(0x80, issuer.keyId))),
    extension(OID.cRLDistributionPoints, false, crlDistributionPointsValue(crlUrl)),
    extension(OID.authorityInfoAccess, false, authorityInfoAccessValue(ocspUrl, caIssuersUrl)),
  ]);
  return {
    issuer,
    signer: options.signer,
    crlUrl,
    ocspUrl,
    caIssuersUrl,
    signatureAlgorithmDer,
    versionDer: Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]),
    algAndIssuerDer: Buffer.concat([signatureAlgorithmDer, issuer.subjectDer]),
    fixedExtensionsDer,
  };
}
