import type { KeyObject } from 'node:crypto';
import { bitString, children, decodeTime, DerError, expectTag, integerBytes, readSingle, smallUint, TAG, type Tlv } from './der.js';
import { CertDefect, parseExtensions, type Extensions } from './extensions.js';
import { namesEqual, parseName, type DistinguishedName } from './names.js';
import { parsePublicKey, parseSignatureAlgorithm, type SignatureAlgorithm } from './signature.js';
import { fail, type Failure } from './types.js';

/** One certificate, read once per validateChain call and shared by every candidate path. */
export interface ParsedCert {
  readonly der: Buffer;
  readonly tbs: Buffer;
  readonly signatureAlgorithm: SignatureAlgorithm | Failure;
  readonly signature: Buffer;
  /** 1, 2 or 3. */
  readonly version: number;
  /** INTEGER contents octets (two's complement). */
  readonly serial: Buffer;
  readonly issuer: DistinguishedName;
  readonly subject: DistinguishedName;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly spki: Buffer;
  readonly publicKey: KeyObject | Failure;
  readonly ext: Extensions;
  /** Issuer and subject are the same name (RFC 5280 §6.1: "self-issued"). */
  readonly selfIssued: boolean;
  /** A defect found after the skeleton was read (bad extension, algorithm mismatch, ...). */
  readonly defect: Failure | null;
}

const NO_EXTENSIONS: Extensions = { raw: new Map() };
/** Real certificates, RSA-16384 and long SAN lists included, stay well under this. */
export const MAX_CERT_BYTES = 64 * 1024;

export function isFailure(x: unknown): x is Failure {
  return typeof x === 'object' && x !== null && 'code' in x && 'detail' in x;
}

function parseTbs(der: Buffer, tbs: Tlv, outerAlg: Tlv, sigBits: Buffer): ParsedCert {
  const f = children(tbs);
  let i = 0;
  let version = 1;
  if (f[i]?.tag === 0xa0) {
    const [v, extra] = children(f[i++] as Tlv);
    if (!v || extra) throw new DerError('bad version');
    version = smallUint(v) + 1;
    // X.690 §11.5: a DEFAULT value (v1) must not be encoded.
    if (version === 1) throw new DerError('explicit v1 version');
  }
  const serial = integerBytes(expectTag(f[i++], TAG.INTEGER, 'serialNumber'));
  const innerAlg = expectTag(f[i++], TAG.SEQUENCE, 'signature');
  // RFC 5280 §4.1.1.2: signatureAlgorithm "MUST contain the same algorithm identifier as the
  // signature field in the sequence tbsCertificate".
  let defect: Failure | null = innerAlg.raw.equals(outerAlg.raw)
    ? null
    : fail('malformed', 'tbsCertificate.signature differs from signatureAlgorithm');
  const issuer = parseName(expectTag(f[i++], TAG.SEQUENCE, 'issuer').raw);
  const validity = children(expectTag(f[i++], TAG.SEQUENCE, 'validity'));
  if (validity.length !== 2) throw new DerError('bad validity');
  const notBefore = decodeTime(validity[0] as Tlv);
  const notAfter = decodeTime(validity[1] as Tlv);
  const subject = parseName(expectTag(f[i++], TAG.SEQUENCE, 'subject').raw);
  const spki = expectTag(f[i++], TAG.SEQUENCE, 'subjectPublicKeyInfo').raw;
  if (f[i]?.tag === 0x81) i++;
  if (f[i]?.tag === 0x82) i++;
  let ext = NO_EXTENSIONS;
  if (f[i]?.tag === 0xa3) {
    // §4.1.2.9: extensions appear only in v3 certificates.
    if (version !== 3) defect ??= fail('unsupported_version', `extensions in a v${version} certificate`);
    try {
      ext = parseExtensions(f[i] as Tlv);
    } catch (e) {
      // Keep the names so path building can still report *why* this certificate is unusable.
      if (e instanceof CertDefect) defect ??= fail(e.code, e.message);
      else if (e instanceof DerError) defect ??= fail('bad_extension', e.message);
      else throw e;
    }
    i++;
  }
  if (i !== f.length) throw new DerError('unexpected element in tbsCertificate');
  return {
    der,
    tbs: tbs.raw,
    signatureAlgorithm: parseSignatureAlgorithm(outerAlg.raw),
    signature: sigBits,
    version,
    serial,
    issuer,
    subject,
    notBefore,
    notAfter,
    spki,
    publicKey: parsePublicKey(spki),
    ext,
    selfIssued: namesEqual(issuer, subject),
    defect,
  };
}

/** Reads a DER certificate (RFC 5280 §4.1); never throws. */
export function parseCert(der: Buffer): ParsedCert | Failure {
  if (der.length > MAX_CERT_BYTES) return fail('malformed', `certificate larger than ${MAX_CERT_BYTES} bytes`);
  try {
    const cert = readSingle(der, TAG.SEQUENCE);
    const [tbs, alg, sig, extra] = children(cert);
    if (!tbs || !alg || !sig || extra) throw new DerError('Certificate is not a 3-element SEQUENCE');
    expectTag(tbs, TAG.SEQUENCE, 'tbsCertificate');
    expectTag(alg, TAG.SEQUENCE, 'signatureAlgorithm');
    const { unused, bytes } = bitString(sig);
    if (unused !== 0) throw new DerError('signature BIT STRING with unused bits');
    return parseTbs(der, tbs, alg, bytes);
  } catch (e) {
    if (e instanceof CertDefect) return fail(e.code, e.message);
    if (e instanceof DerError) return fail('malformed', e.message);
    return fail('malformed', 'certificate could not be parsed');
  }
}
