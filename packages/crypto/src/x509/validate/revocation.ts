import { ALL_REASONS, CRL_REASON_NAMES, parseCrl, parseCrlDistributionPoints, type DistributionPoint, type ParsedCrl } from './crl-parse.js';
import { DerError } from './der.js';
import type { GeneralName } from './general-names.js';
import { namesEqual } from './names.js';
import { OID } from './oids.js';
import { isFailure, parseCert, type ParsedCert } from './parse-cert.js';
import { verifySignature } from './signature.js';
import { fail, KEY_USAGE_BITS, type Failure } from './types.js';

/** A CRL as callers hold it: DER, one PEM `X509 CRL` block, or already read by {@link parseCrl}. */
export type CrlInput = Buffer | Uint8Array | ParsedCrl;

/**
 * Revocation input for validateChain (RFC 5280 §6.3). Only complete, direct CRLs are used: delta
 * CRLs and indirect CRLs are refused (never used, so a certificate they alone cover is "unknown").
 */
export interface RevocationInput {
  /** CRLs from any issuers; those that do not apply to a certificate of the path are ignored. */
  readonly crls: readonly CrlInput[];
  /**
   * What a certificate whose status no usable CRL determines does to the path: `fail` (default:
   * fail closed, reason `revocation_unknown`) or `allow` (the result says `revocation: 'unknown'`).
   */
  readonly unknown?: 'fail' | 'allow';
}

/** Outcome for a valid path: every certificate covered by a usable CRL, or not. */
export type RevocationSummary = 'good' | 'unknown';

const CRL_SIGN = 1 << KEY_USAGE_BITS.cRLSign;

/** A CRL input as a ParsedCrl, or why it cannot be one. */
export function readCrlInput(input: CrlInput): ParsedCrl | Failure {
  if (!(input instanceof Uint8Array)) return input;
  const buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  if (buf[0] === 0x30) return parseCrl(buf);
  const m = /-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]+)-----END X509 CRL-----/.exec(buf.subarray(0, 64 * 1024 * 1024).toString('latin1'));
  return m?.[1] ? parseCrl(Buffer.from(m[1].replace(/\s+/g, ''), 'base64')) : fail('malformed', 'CRL is neither DER nor PEM');
}

function sameName(a: GeneralName, b: GeneralName): boolean {
  if (a.type !== b.type) return false;
  switch (a.type) {
    case 'uri':
      return a.value === (b as typeof a).value;
    case 'dns':
    case 'email':
      return a.value.toLowerCase() === (b as typeof a).value.toLowerCase();
    case 'ip':
      return a.bytes.equals((b as typeof a).bytes);
    case 'dn':
      return namesEqual(a.name, (b as typeof a).name);
    default:
      return false;
  }
}

/**
 * Why `crl` cannot be used as a CRL of `issuer` at `time`, whatever certificate it is asked
 * about (RFC 5280 §6.3.3 (a), (f), (g)); null when it can.
 */
export function crlUnusable(crl: ParsedCrl, issuer: ParsedCert, time: Date): string | null {
  if (!namesEqual(crl.issuer, issuer.subject)) return 'CRL issuer is not the certificate issuer';
  if (crl.unusable !== null) return crl.unusable;
  // §5.2.4: a delta CRL is meaningless without its base; we use complete CRLs only.
  if (crl.delta) return 'delta CRL (not supported)';
  // §5.2.5: an indirect CRL speaks for other issuers too; we use direct CRLs only.
  if (crl.idp?.indirectCRL === true) return 'indirect CRL (not supported)';
  // §6.3.3 (f): the CRL is signed by the certificate's issuer, whose key may sign CRLs.
  if (issuer.ext.keyUsage !== undefined && (issuer.ext.keyUsage & CRL_SIGN) === 0) return 'issuer keyUsage lacks cRLSign';
  const ski = issuer.ext.subjectKeyId;
  if (crl.authorityKeyId && ski && !crl.authorityKeyId.equals(ski)) return 'CRL authorityKeyIdentifier names another key';
  const alg = crl.signatureAlgorithm;
  const key = issuer.publicKey;
  if (isFailure(alg)) return `CRL ${alg.detail}`;
  if (isFailure(key)) return `issuer ${key.detail}`;
  if (verifySignature(alg, key, crl.tbs, crl.signature)) return 'CRL signature does not verify with the issuer key';
  // §6.3.3 (a): thisUpdate not after the validation time; a CRL past its nextUpdate is stale, and
  // one without nextUpdate (§5.1.2.5: conforming CAs MUST include it) cannot be judged fresh.
  if (crl.thisUpdate.getTime() > time.getTime()) return `CRL thisUpdate ${crl.thisUpdate.toISOString()} is in the future`;
  if (crl.nextUpdate === undefined) return 'CRL without nextUpdate';
  if (crl.nextUpdate.getTime() < time.getTime()) return `CRL stale since ${crl.nextUpdate.toISOString()}`;
  return null;
}

/**
 * Whether `crl` may decide the status of `cert` (issued by `issuer`), and for which reasons
 * (RFC 5280 §6.3.3 (b)–(d)); a string says why not.
 */
function crlScope(crl: ParsedCrl, cert: ParsedCert, issuer: ParsedCert, dps: readonly DistributionPoint[], time: Date): number | string {
  const unusable = crlUnusable(crl, issuer, time);
  if (unusable !== null) return unusable;
  const idp = crl.idp;
  if (idp === undefined) return ALL_REASONS;
  // §5.2.5 / §6.3.3 (b)(2): the CRL's scope must include this certificate.
  if (idp.onlyContainsAttributeCerts) return 'CRL covers attribute certificates only';
  const isCa = cert.ext.basicConstraints?.cA === true;
  if (idp.onlyContainsUserCerts && isCa) return 'CRL covers end-entity certificates only';
  if (idp.onlyContainsCACerts && !isCa) return 'CRL covers CA certificates only';
  if (idp.relativeName) return 'CRL distribution point named relative to the issuer (not supported)';
  if (idp.fullName === undefined) return idp.onlySomeReasons;
  // §6.3.3 (b)(2)(i): a partitioned CRL covers the certificates whose cRLDistributionPoints name
  // its distribution point; the reasons are those both the DP and the IDP cover.
  const names = idp.fullName;
  const dp = dps.find((d) => !d.crlIssuer && d.fullName?.some((n) => names.some((m) => sameName(n, m))));
  if (dp === undefined) return "CRL distribution point is not one of the certificate's";
  return idp.onlySomeReasons & dp.reasons;
}

/**
 * Checks that `crl` is a usable CRL of the CA certificate `issuer` at `time` (name, cRLSign,
 * signature, freshness; delta and indirect CRLs refused): null when it is, else why not. For
 * accepting a CRL before storing it; {@link checkRevocation} makes the same checks per path.
 */
export function checkCrlIssuer(crl: ParsedCrl, issuer: Buffer, time: Date): string | null {
  const cert = parseCert(issuer);
  if (isFailure(cert)) return `issuer certificate: ${cert.detail}`;
  return crlUnusable(crl, cert, time);
}

function distributionPoints(cert: ParsedCert): DistributionPoint[] | Failure {
  const ext = cert.ext.raw.get(OID.crlDistributionPoints);
  if (ext === undefined) return [];
  try {
    return parseCrlDistributionPoints(ext.value);
  } catch (e) {
    return fail('bad_extension', `cRLDistributionPoints: ${e instanceof DerError ? e.message : 'unreadable'}`);
  }
}

/** The status of one certificate: null when good, a Failure when revoked, a string when unknown. */
function statusOf(cert: ParsedCert, issuer: ParsedCert, crls: readonly ParsedCrl[], time: Date, depth: number): Failure | string | null {
  const dps = distributionPoints(cert);
  if (isFailure(dps)) return dps;
  const why: string[] = [];
  // Among usable CRLs of one scope only the newest speaks: a certificateHold released in a later
  // CRL must not be overridden by an older one, and an older CRL must not hide a newer revocation.
  const newest = new Map<string, { crl: ParsedCrl; mask: number }>();
  for (const crl of crls) {
    if (!namesEqual(crl.issuer, issuer.subject)) continue;
    const mask = crlScope(crl, cert, issuer, dps, time);
    if (typeof mask === 'string') {
      why.push(mask);
      continue;
    }
    const scope = crl.idp?.raw.toString('hex') ?? '';
    const cur = newest.get(scope);
    if (!cur || crl.thisUpdate > cur.crl.thisUpdate || (crl.thisUpdate.getTime() === cur.crl.thisUpdate.getTime() && (crl.crlNumber ?? -1n) > (cur.crl.crlNumber ?? -1n))) {
      newest.set(scope, { crl, mask });
    }
  }
  let covered = 0;
  const serial = cert.serial.toString('hex');
  for (const { crl, mask } of newest.values()) {
    const entry = crl.revoked.get(serial);
    if (entry !== undefined) {
      const reason = CRL_REASON_NAMES[entry.reason] ?? String(entry.reason);
      return fail('revoked', `certificate ${serial} at depth ${depth} revoked (${reason}) on ${entry.revokedAt.toISOString()}, CRL of ${crl.thisUpdate.toISOString()}`);
    }
    covered |= mask;
  }
  // §6.3.3 (i)/(k): the status is known only once CRLs cover every reason.
  if ((covered & ALL_REASONS) === ALL_REASONS) return null;
  const cause = why.length ? why.slice(0, 3).join('; ') : newest.size ? 'usable CRLs cover only some reasons' : 'no CRL from its issuer';
  return `no usable CRL for certificate ${serial} at depth ${depth}: ${cause}`;
}

/**
 * RFC 5280 §6.3: the revocation status of every certificate of `path` (leaf first) but the trust
 * anchor, from CRLs signed by that certificate's issuer in the path. Revoked (any reason,
 * certificateHold included) is `revoked`; an undetermined status is `revocation_unknown` unless
 * `input.unknown` is `allow`. A CRL input that cannot be read is ignored, as if not supplied.
 */
export function checkRevocation(path: readonly ParsedCert[], input: RevocationInput, time: Date): Failure | RevocationSummary {
  if (!Array.isArray(input.crls)) return fail('invalid_input', 'revocation.crls must be an array');
  if (input.unknown !== undefined && input.unknown !== 'fail' && input.unknown !== 'allow') return fail('invalid_input', 'revocation.unknown must be fail or allow');
  const crls: ParsedCrl[] = [];
  const unreadable: string[] = [];
  for (const c of input.crls) {
    const p = readCrlInput(c);
    if (isFailure(p)) unreadable.push(p.detail);
    else crls.push(p);
  }
  let summary: RevocationSummary = 'good';
  for (let i = 0; i < path.length - 1; i++) {
    const s = statusOf(path[i] as ParsedCert, path[i + 1] as ParsedCert, crls, time, i);
    if (s === null) continue;
    if (typeof s !== 'string') return s;
    if (input.unknown !== 'allow') return fail('revocation_unknown', unreadable.length ? `${s}; ${unreadable.length} CRL(s) unreadable: ${unreadable[0]}` : s);
    summary = 'unknown';
  }
  return summary;
}

/**
 * The http and https URIs in a certificate's cRLDistributionPoints (RFC 5280 §4.2.1.13), for
 * fetching its issuer's CRL; none when the certificate or the extension cannot be read.
 */
export function crlDistributionPointUrls(der: Buffer): string[] {
  const cert = parseCert(der);
  if (isFailure(cert)) return [];
  const dps = distributionPoints(cert);
  if (isFailure(dps)) return [];
  const urls = dps.flatMap((d) => (d.crlIssuer ? [] : (d.fullName ?? []))).flatMap((n) => (n.type === 'uri' && /^https?:\/\//i.test(n.value) ? [n.value] : []));
  return [...new Set(urls)];
}
