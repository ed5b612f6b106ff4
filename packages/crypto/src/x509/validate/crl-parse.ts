import {
  bitString,
  children,
  decodeBoolean,
  decodeOid,
  decodeTime,
  DerError,
  expectTag,
  integerBytes,
  readSingle,
  readTlv,
  smallUint,
  TAG,
  type Tlv,
} from './der.js';
import { parseGeneralName, parseGeneralNames, type GeneralName } from './general-names.js';
import { parseName, type DistinguishedName } from './names.js';
import { parseSignatureAlgorithm, type SignatureAlgorithm } from './signature.js';
import { fail, type Failure } from './types.js';

// A strict reader for X.509 v2 CRLs (RFC 5280 §5). Like parse-cert.ts it keeps the exact
// tbsCertList bytes (the signature is over them) and never throws past `parseCrl`.

/** CRL and CRL-entry extension OIDs (RFC 5280 §5.2, §5.3). */
export const CRL_OID = {
  authorityKeyIdentifier: '2.5.29.35',
  issuerAltName: '2.5.29.18',
  cRLNumber: '2.5.29.20',
  reasonCode: '2.5.29.21',
  holdInstructionCode: '2.5.29.23',
  invalidityDate: '2.5.29.24',
  deltaCRLIndicator: '2.5.29.27',
  issuingDistributionPoint: '2.5.29.28',
  certificateIssuer: '2.5.29.29',
  freshestCRL: '2.5.29.46',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
} as const;

/** CRLReason names by value (RFC 5280 §5.3.1; 7 is not used). */
export const CRL_REASON_NAMES: Readonly<Record<number, string>> = {
  0: 'unspecified',
  1: 'keyCompromise',
  2: 'cACompromise',
  3: 'affiliationChanged',
  4: 'superseded',
  5: 'cessationOfOperation',
  6: 'certificateHold',
  8: 'removeFromCRL',
  9: 'privilegeWithdrawn',
  10: 'aACompromise',
};

/** ReasonFlags bits 1..8 (RFC 5280 §4.2.1.13); bit 0 (unused) is never a reason to cover. */
export const ALL_REASONS = 0x1fe;

/** Extensions whose meaning we process, so a CRL carrying them critical is still usable. */
const KNOWN_CRL_EXTENSIONS = new Set<string>([
  CRL_OID.authorityKeyIdentifier,
  CRL_OID.issuerAltName,
  CRL_OID.cRLNumber,
  CRL_OID.deltaCRLIndicator,
  CRL_OID.issuingDistributionPoint,
  CRL_OID.freshestCRL,
  CRL_OID.authorityInfoAccess,
]);
const KNOWN_ENTRY_EXTENSIONS = new Set<string>([CRL_OID.reasonCode, CRL_OID.holdInstructionCode, CRL_OID.invalidityDate, CRL_OID.certificateIssuer]);

/** Bigger than any CRL a manufacturer publishes (Fleetkey's own, 100,000 entries, is ~4 MB). */
export const MAX_CRL_BYTES = 16 * 1024 * 1024;

export interface IssuingDistributionPoint {
  /** fullName of the distribution point; undefined when absent. */
  readonly fullName: readonly GeneralName[] | undefined;
  /** nameRelativeToCRLIssuer was used (we do not resolve it: such a CRL is not used). */
  readonly relativeName: boolean;
  readonly onlyContainsUserCerts: boolean;
  readonly onlyContainsCACerts: boolean;
  /** ReasonFlags mask (bit n = reason n); ALL_REASONS when absent. */
  readonly onlySomeReasons: number;
  readonly indirectCRL: boolean;
  readonly onlyContainsAttributeCerts: boolean;
  /** The extension's DER value: CRLs with equal scopes replace each other. */
  readonly raw: Buffer;
}

export interface CrlEntry {
  /** CRLReason value; 0 (unspecified) when the entry carries no reasonCode. */
  readonly reason: number;
  readonly revokedAt: Date;
  /** The entry has the certificateIssuer extension (only meaningful in an indirect CRL). */
  readonly certificateIssuer: boolean;
}

/** One CRL, read once and reusable for any number of validations. */
export interface ParsedCrl {
  readonly der: Buffer;
  readonly tbs: Buffer;
  readonly signatureAlgorithm: SignatureAlgorithm | Failure;
  readonly signature: Buffer;
  readonly issuer: DistinguishedName;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  /** cRLNumber as a non-negative bigint, when present. */
  readonly crlNumber: bigint | undefined;
  readonly authorityKeyId: Buffer | undefined;
  readonly idp: IssuingDistributionPoint | undefined;
  /** deltaCRLIndicator present (RFC 5280 §5.2.4). */
  readonly delta: boolean;
  /** Revoked serials (hex of the INTEGER contents) to their entry: O(1) lookups. */
  readonly revoked: ReadonlyMap<string, CrlEntry>;
  /** Why this CRL may not be used for any certificate, though it parsed (unknown critical extension...). */
  readonly unusable: string | null;
}

interface RawExt {
  readonly oid: string;
  readonly critical: boolean;
  readonly value: Buffer;
}

function readExtensions(tlv: Tlv): RawExt[] {
  const list = children(readSingle(tlv.value, TAG.SEQUENCE));
  if (list.length === 0) throw new DerError('empty extensions');
  const seen = new Set<string>();
  return list.map((ext) => {
    if (ext.tag !== TAG.SEQUENCE) throw new DerError('Extension is not a SEQUENCE');
    const parts = children(ext);
    const oid = decodeOid(expectTag(parts[0], TAG.OID, 'extnID'));
    let i = 1;
    let critical = false;
    if (parts[i]?.tag === TAG.BOOLEAN) {
      critical = decodeBoolean(parts[i++] as Tlv);
      // X.690 §11.5: DEFAULT FALSE is not encoded in DER.
      if (!critical) throw new DerError(`extension ${oid}: explicit critical FALSE`);
    }
    const octets = expectTag(parts[i++], TAG.OCTET_STRING, `extension ${oid}`);
    if (i !== parts.length) throw new DerError(`extension ${oid}: bad shape`);
    // RFC 5280 §4.2 (applied to CRLs by §5.2): one instance of an extension.
    if (seen.has(oid)) throw new DerError(`extension ${oid} appears twice`);
    seen.add(oid);
    return { oid, critical, value: octets.value };
  });
}

/** ReasonFlags BIT STRING → mask with bit n = reason n (X.680 named bits, bit 0 first). */
function reasonFlags(tlv: Tlv): number {
  const { bytes } = bitString({ ...tlv, tag: TAG.BIT_STRING });
  let mask = 0;
  for (let bit = 0; bit < bytes.length * 8 && bit < 16; bit++) {
    if (((bytes[bit >> 3] as number) & (0x80 >> (bit & 7))) !== 0) mask |= 1 << bit;
  }
  return mask;
}

/** DistributionPointName ::= CHOICE { fullName [0] GeneralNames, nameRelativeToCRLIssuer [1] RDN }. */
export function distributionPointName(tlv: Tlv): { fullName: GeneralName[] | undefined; relative: boolean } {
  const [choice, extra] = children(tlv);
  if (!choice || extra) throw new DerError('bad DistributionPointName');
  if (choice.tag === 0xa0) return { fullName: parseGeneralNames(Buffer.concat([Buffer.from([0x30]), choice.raw.subarray(1)])), relative: false };
  if (choice.tag === 0xa1) return { fullName: undefined, relative: true };
  throw new DerError('bad DistributionPointName');
}

// RFC 5280 §5.2.5: IssuingDistributionPoint ::= SEQUENCE { distributionPoint [0], onlyContainsUserCerts [1],
// onlyContainsCACerts [2], onlySomeReasons [3], indirectCRL [4], onlyContainsAttributeCerts [5] }.
function parseIdp(value: Buffer): IssuingDistributionPoint {
  const items = children(readSingle(value, TAG.SEQUENCE));
  const flag = (t: Tlv): boolean => {
    const b = decodeBoolean({ ...t, tag: TAG.BOOLEAN });
    if (!b) throw new DerError('IDP: DEFAULT FALSE encoded');
    return b;
  };
  let fullName: GeneralName[] | undefined;
  let relativeName = false;
  let user = false;
  let ca = false;
  let reasons = ALL_REASONS;
  let indirect = false;
  let attr = false;
  let last = -1;
  for (const it of items) {
    const n = it.tag & 0x1f;
    // Fields are tagged [0]..[5] in order; each at most once.
    if ((it.tag & 0xc0) !== 0x80 || n <= last || n > 5) throw new DerError('IDP: unexpected element');
    last = n;
    if (n === 0) {
      if (it.tag !== 0xa0) throw new DerError('IDP: bad distributionPoint');
      ({ fullName, relative: relativeName } = distributionPointName(it));
    } else if (n === 3) {
      if (it.tag !== 0x83) throw new DerError('IDP: bad onlySomeReasons');
      reasons = reasonFlags(it) & ALL_REASONS;
    } else {
      if (it.tag !== (0x80 | n)) throw new DerError('IDP: bad flag');
      if (n === 1) user = flag(it);
      else if (n === 2) ca = flag(it);
      else if (n === 4) indirect = flag(it);
      else attr = flag(it);
    }
  }
  // §5.2.5: "at most one of onlyContainsUserCerts, onlyContainsCACerts, and
  // onlyContainsAttributeCerts may be set to TRUE"; an IDP with nothing set is meaningless.
  if (Number(user) + Number(ca) + Number(attr) > 1) throw new DerError('IDP: more than one onlyContains* flag');
  if (items.length === 0) throw new DerError('IDP: empty');
  return { fullName, relativeName, onlyContainsUserCerts: user, onlyContainsCACerts: ca, onlySomeReasons: reasons, indirectCRL: indirect, onlyContainsAttributeCerts: attr, raw: value };
}

/** `Extensions` holding only a non-critical reasonCode: how nearly every entry is written (RFC 5280 §5.3.1). */
const REASON_ONLY = Buffer.from('300c300a0603551d1504030a01', 'hex');

function entryExtensions(ext: Tlv, note: (why: string) => void): { reason: number; certificateIssuer: boolean } {
  // Fast path, byte for byte, for the common shape: a 100,000-entry CRL is read in a fraction of
  // the time the general reader below takes.
  if (ext.raw.length === REASON_ONLY.length + 1 && ext.raw.subarray(0, REASON_ONLY.length).equals(REASON_ONLY)) {
    return { reason: checkedReason(ext.raw[REASON_ONLY.length] as number, note), certificateIssuer: false };
  }
  let reason = 0;
  let certificateIssuer = false;
  for (const x of readExtensions({ ...ext, value: ext.raw })) {
    if (x.critical && !KNOWN_ENTRY_EXTENSIONS.has(x.oid)) note(`critical CRL entry extension ${x.oid} not understood`);
    if (x.oid === CRL_OID.reasonCode) {
      const r = readSingle(x.value, 0x0a);
      if (r.value.length !== 1) throw new DerError('bad reasonCode');
      reason = checkedReason(r.value[0] as number, note);
    } else if (x.oid === CRL_OID.invalidityDate) {
      decodeTime(readSingle(x.value, TAG.GENERALIZED_TIME));
    } else if (x.oid === CRL_OID.certificateIssuer) {
      parseGeneralNames(x.value);
      certificateIssuer = true;
    }
  }
  return { reason, certificateIssuer };
}

function checkedReason(reason: number, note: (why: string) => void): number {
  if (CRL_REASON_NAMES[reason] === undefined) throw new DerError(`unknown CRLReason ${reason}`);
  // §5.3.1: removeFromCRL "is for use with delta CRLs only".
  if (reason === 8) note('removeFromCRL in a complete CRL');
  return reason;
}

function parseEntries(tlv: Tlv, v2: boolean, note: (why: string) => void): { revoked: Map<string, CrlEntry>; certificateIssuer: boolean } {
  const out = new Map<string, CrlEntry>();
  let anyIssuer = false;
  // §5.1.2.6: "When there are no revoked certificates, the revoked certificates list MUST be absent."
  if (tlv.value.length === 0) throw new DerError('empty revokedCertificates');
  for (let off = 0; off < tlv.value.length; ) {
    const e = readTlv(tlv.value, off);
    off += e.raw.length;
    if (e.tag !== TAG.SEQUENCE) throw new DerError('revoked entry is not a SEQUENCE');
    const [serialTlv, dateTlv, extTlv, extra] = children(e);
    if (!serialTlv || !dateTlv || extra) throw new DerError('bad revoked entry');
    const serial = integerBytes(serialTlv).toString('hex');
    const revokedAt = decodeTime(dateTlv);
    let ext = { reason: 0, certificateIssuer: false };
    if (extTlv) {
      if (!v2) throw new DerError('entry extensions in a v1 CRL');
      if (extTlv.tag !== TAG.SEQUENCE) throw new DerError('bad crlEntryExtensions');
      ext = entryExtensions(extTlv, note);
      anyIssuer ||= ext.certificateIssuer;
    }
    // A serial listed twice would make the answer depend on which entry we kept.
    if (out.has(serial)) throw new DerError('serial listed twice');
    out.set(serial, { reason: ext.reason, revokedAt, certificateIssuer: ext.certificateIssuer });
  }
  return { revoked: out, certificateIssuer: anyIssuer };
}

function parseTbsCertList(der: Buffer, tbs: Tlv, outerAlg: Tlv, signature: Buffer): ParsedCrl {
  const f = children(tbs);
  let i = 0;
  let v2 = false;
  if (f[i]?.tag === TAG.INTEGER) {
    // §5.1.2.1: Version OPTIONAL, "MUST be v2" when present.
    if (smallUint(f[i++] as Tlv) !== 1) throw new DerError('CRL version is not v2');
    v2 = true;
  }
  const innerAlg = expectTag(f[i++], TAG.SEQUENCE, 'signature');
  // §5.1.1.2: signatureAlgorithm "MUST contain the same algorithm identifier as the signature field in tbsCertList".
  if (!innerAlg.raw.equals(outerAlg.raw)) throw new DerError('tbsCertList.signature differs from signatureAlgorithm');
  const issuer = parseName(expectTag(f[i++], TAG.SEQUENCE, 'issuer').raw);
  // §5.1.2.3: "The issuer field MUST contain a non-empty X.500 distinguished name".
  if (issuer.rdns.length === 0) throw new DerError('empty CRL issuer');
  const thisUpdateTlv = f[i++];
  if (!thisUpdateTlv) throw new DerError('missing thisUpdate');
  const thisUpdate = decodeTime(thisUpdateTlv);
  let nextUpdate: Date | undefined;
  if (f[i]?.tag === TAG.UTC_TIME || f[i]?.tag === TAG.GENERALIZED_TIME) nextUpdate = decodeTime(f[i++] as Tlv);
  const reasons: string[] = [];
  const note = (why: string): void => void reasons.push(why);
  let revoked = new Map<string, CrlEntry>();
  let anyIssuer = false;
  if (f[i]?.tag === TAG.SEQUENCE) ({ revoked, certificateIssuer: anyIssuer } = parseEntries(f[i++] as Tlv, v2, note));
  let crlNumber: bigint | undefined;
  let authorityKeyId: Buffer | undefined;
  let idp: IssuingDistributionPoint | undefined;
  let delta = false;
  if (f[i]?.tag === 0xa0) {
    if (!v2) throw new DerError('crlExtensions in a v1 CRL');
    const inner = children(f[i++] as Tlv);
    if (inner.length !== 1) throw new DerError('bad crlExtensions');
    for (const x of readExtensions({ ...(inner[0] as Tlv), value: (inner[0] as Tlv).raw })) {
      // §5.2: "If a CRL contains a critical extension that the application cannot process, then
      // the application MUST NOT use that CRL to determine the status of certificates."
      if (x.critical && !KNOWN_CRL_EXTENSIONS.has(x.oid)) note(`critical CRL extension ${x.oid} not understood`);
      switch (x.oid) {
        case CRL_OID.cRLNumber: {
          const n = integerBytes(readSingle(x.value, TAG.INTEGER));
          // §5.2.3: a non-negative integer of at most 20 octets.
          if (((n[0] as number) & 0x80) !== 0 || n.length > 21) throw new DerError('bad cRLNumber');
          crlNumber = BigInt(`0x${n.toString('hex')}`);
          break;
        }
        case CRL_OID.authorityKeyIdentifier: {
          const items = children(readSingle(x.value, TAG.SEQUENCE));
          if (items[0]?.tag === 0x80) authorityKeyId = items[0].value;
          break;
        }
        case CRL_OID.deltaCRLIndicator:
          integerBytes(readSingle(x.value, TAG.INTEGER));
          delta = true;
          break;
        case CRL_OID.issuingDistributionPoint:
          idp = parseIdp(x.value);
          break;
        case CRL_OID.issuerAltName:
          parseGeneralNames(x.value);
          break;
        default:
          break;
      }
    }
  }
  if (i !== f.length) throw new DerError('unexpected element in tbsCertList');
  if (idp?.indirectCRL !== true && anyIssuer) {
    // §5.3.3: certificateIssuer belongs to indirect CRLs only.
    note('certificateIssuer entry extension in a CRL that is not indirect');
  }
  return {
    der,
    tbs: tbs.raw,
    signatureAlgorithm: parseSignatureAlgorithm(outerAlg.raw),
    signature,
    issuer,
    thisUpdate,
    nextUpdate,
    crlNumber,
    authorityKeyId,
    idp,
    delta,
    revoked,
    unusable: reasons[0] ?? null,
  };
}

/** Reads a DER CRL (RFC 5280 §5.1); never throws: anything malformed is a `malformed` Failure. */
export function parseCrl(der: Buffer): ParsedCrl | Failure {
  if (!Buffer.isBuffer(der)) return fail('invalid_input', 'CRL is not a Buffer');
  if (der.length > MAX_CRL_BYTES) return fail('malformed', `CRL larger than ${MAX_CRL_BYTES} bytes`);
  try {
    const list = readSingle(der, TAG.SEQUENCE);
    const [tbs, alg, sig, extra] = children(list);
    if (!tbs || !alg || !sig || extra) throw new DerError('CertificateList is not a 3-element SEQUENCE');
    expectTag(tbs, TAG.SEQUENCE, 'tbsCertList');
    expectTag(alg, TAG.SEQUENCE, 'signatureAlgorithm');
    const { unused, bytes } = bitString(sig);
    if (unused !== 0) throw new DerError('signature BIT STRING with unused bits');
    return parseTbsCertList(der, tbs, alg, bytes);
  } catch (e) {
    if (e instanceof DerError) return fail('malformed', `CRL: ${e.message}`);
    return fail('malformed', 'CRL could not be parsed');
  }
}

/** The DistributionPoint entries of a certificate's cRLDistributionPoints extension (§4.2.1.13). */
export interface DistributionPoint {
  readonly fullName: readonly GeneralName[] | undefined;
  readonly relative: boolean;
  /** ReasonFlags mask; ALL_REASONS when absent. */
  readonly reasons: number;
  readonly crlIssuer: boolean;
}

/** Parses a cRLDistributionPoints extension value; throws DerError on malformed input. */
export function parseCrlDistributionPoints(value: Buffer): DistributionPoint[] {
  const dps = children(readSingle(value, TAG.SEQUENCE));
  if (dps.length === 0) throw new DerError('empty cRLDistributionPoints');
  return dps.map((dp) => {
    if (dp.tag !== TAG.SEQUENCE) throw new DerError('DistributionPoint is not a SEQUENCE');
    let fullName: GeneralName[] | undefined;
    let relative = false;
    let reasons = ALL_REASONS;
    let crlIssuer = false;
    for (const it of children(dp)) {
      if (it.tag === 0xa0) ({ fullName, relative } = distributionPointName(it));
      else if (it.tag === 0x81) reasons = reasonFlags(it) & ALL_REASONS;
      else if (it.tag === 0xa2) {
        children(it).forEach((n) => parseGeneralName(n));
        crlIssuer = true;
      } else throw new DerError('DistributionPoint: unexpected element');
    }
    // §4.2.1.13: "either distributionPoint or cRLIssuer MUST be present".
    if (fullName === undefined && !relative && !crlIssuer) throw new DerError('DistributionPoint names nothing');
    return { fullName, relative, reasons, crlIssuer };
  });
}
