import { createHash, type X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { OCSPRequest } from '@peculiar/asn1-ocsp';
import { FleetkeyError } from '@fleetkey/protocol';
import { DER_NULL, children, octetString, oid, readExactly, seq, unsignedInteger } from './der.js';
import { subjectPublicKeyBits } from './hash.js';
import { readIssuer } from './issuer.js';
import { OID } from './oids.js';

/** CertID (RFC 6960 §4.1.1) with the serial as lower-case hex magnitude. */
export interface OcspCertId {
  /** Dotted OID of the hash over issuer name and key. */
  readonly hashAlgorithm: string;
  readonly issuerNameHash: Buffer;
  readonly issuerKeyHash: Buffer;
  readonly serialHex: string;
}

export interface ParsedOcspRequest {
  readonly certIds: OcspCertId[];
  /**
   * The nonce extension's extnValue as received (RFC 8954 clients send a DER OCTET STRING of
   * 1..32 octets); buildOcspResponse echoes it byte for byte.
   */
  readonly nonce?: Buffer;
}

export const OCSP_MAX_REQUEST_BYTES = 8192;
const MAX_CERT_IDS = 32;

const HASHES: Readonly<Record<string, string>> = {
  [OID.sha1]: 'sha1',
  [OID.sha256]: 'sha256',
  [OID.sha384]: 'sha384',
  [OID.sha512]: 'sha512',
};

const malformed = (detail: string, cause?: unknown): never => {
  throw new FleetkeyError('OCSP_REQUEST_MALFORMED', cause === undefined ? { detail } : { detail, cause });
};

/** A nonce must be 1..32 octets (RFC 8954 §2.1); accept the bare form older clients send, same bounds. */
function checkNonce(extnValue: Buffer): Buffer {
  let inner = extnValue;
  try {
    inner = readExactly(extnValue, 0x04).value;
  } catch {
    // not wrapped: legacy raw nonce
  }
  if (inner.length < 1 || inner.length > 32) malformed('nonce length outside 1..32');
  return extnValue;
}

/**
 * Parses a DER OCSPRequest (RFC 6960 §4.1.1). Request signatures are not required by this
 * responder and are ignored (§4.1.2 makes them optional). Unknown critical extensions,
 * trailing bytes, empty or oversized request lists are refused.
 *
 * @throws FleetkeyError OCSP_REQUEST_MALFORMED
 */
export function parseOcspRequest(der: Buffer): ParsedOcspRequest {
  if (der.length === 0 || der.length > OCSP_MAX_REQUEST_BYTES) malformed('size');
  try {
    children(readExactly(der, 0x30)); // DER framing, no trailing bytes
  } catch (e) {
    malformed('framing', e);
  }
  let request: OCSPRequest;
  try {
    request = AsnConvert.parse(der, OCSPRequest);
  } catch (e) {
    return malformed('schema', e);
  }
  const list = request.tbsRequest.requestList;
  if (list.length === 0 || list.length > MAX_CERT_IDS) malformed('requestList must hold 1..32 requests');
  const certIds = list.map((r): OcspCertId => {
    const id = r.reqCert;
    const serial = Buffer.from(id.serialNumber);
    if (serial.length === 0 || serial.length > 21) malformed('serial length');
    if (r.singleRequestExtensions?.some((e) => e.critical)) malformed('critical single-request extension');
    return {
      hashAlgorithm: id.hashAlgorithm.algorithm,
      issuerNameHash: Buffer.from(id.issuerNameHash.buffer),
      issuerKeyHash: Buffer.from(id.issuerKeyHash.buffer),
      serialHex: (serial.length > 1 && serial[0] === 0 ? serial.subarray(1) : serial).toString('hex'),
    };
  });
  let nonce: Buffer | undefined;
  for (const ext of request.tbsRequest.requestExtensions ?? []) {
    if (ext.extnID === OID.ocspNonce) nonce = checkNonce(Buffer.from(ext.extnValue.buffer));
    else if (ext.critical) malformed(`unknown critical extension ${ext.extnID}`);
  }
  return nonce === undefined ? { certIds } : { certIds, nonce };
}

/**
 * The request of an HTTP GET (RFC 6960 Appendix A.1): the path after the responder URL is the
 * URL-encoded base64 of the DER request.
 *
 * @throws FleetkeyError OCSP_REQUEST_MALFORMED
 */
export function ocspRequestFromGetPath(pathSuffix: string): Buffer {
  let b64: string;
  try {
    b64 = decodeURIComponent(pathSuffix.replace(/^\/+/, ''));
  } catch (e) {
    return malformed('path is not URL-encoded', e);
  }
  if (b64.length === 0 || b64.length > OCSP_MAX_REQUEST_BYTES * 2 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) malformed('path is not base64');
  return Buffer.from(b64, 'base64');
}

/** The DER CertID for a parsed certId; used when answering. */
export function certIdDer(certId: OcspCertId): Buffer {
  return seq(
    seq(oid(certId.hashAlgorithm), DER_NULL),
    octetString(certId.issuerNameHash),
    octetString(certId.issuerKeyHash),
    unsignedInteger(Buffer.from(certId.serialHex, 'hex')),
  );
}

/**
 * Whether `certId` names a certificate of `issuer`: issuerNameHash over the issuer's subject
 * DER and issuerKeyHash over its subjectPublicKey bits (RFC 6960 §4.1.1), with SHA-1,
 * SHA-256, SHA-384 or SHA-512. Any other hash: false (the responder answers "unknown").
 */
export function certIdMatchesIssuer(certId: OcspCertId, issuerCertificate: X509Certificate | Buffer | string): boolean {
  const hash = HASHES[certId.hashAlgorithm];
  if (hash === undefined) return false;
  const issuer = readIssuer(issuerCertificate, undefined, false);
  const nameHash = createHash(hash).update(issuer.subjectDer).digest();
  const keyHash = createHash(hash).update(subjectPublicKeyBits(issuer.spkiDer)).digest();
  return nameHash.equals(certId.issuerNameHash) && keyHash.equals(certId.issuerKeyHash);
}
