import { bitString, children, decodeBoolean, decodeOid, DerError, readSingle, smallUint, TAG, type Tlv } from './der.js';
import { parseGeneralName, parseGeneralNames, type GeneralName } from './general-names.js';
import { OID } from './oids.js';
import {
  parseCertificatePolicies,
  parseInhibitAnyPolicy,
  parsePolicyConstraints,
  parsePolicyMappings,
  type PolicyConstraintsExt,
  type PolicyInformation,
  type PolicyMapping,
} from './policy-extensions.js';
import type { ValidationFailureCode } from './types.js';

/** Raised while decoding one certificate; parseCert turns it into a Failure. */
export class CertDefect extends Error {
  constructor(
    readonly code: ValidationFailureCode,
    message: string,
  ) {
    super(message);
  }
}

export interface RawExtension {
  readonly critical: boolean;
  readonly value: Buffer;
}

export interface BasicConstraints {
  readonly cA: boolean;
  readonly pathLen: number | undefined;
  readonly critical: boolean;
}

export interface NameConstraintsExt {
  readonly permitted: readonly GeneralName[];
  readonly excluded: readonly GeneralName[];
  readonly critical: boolean;
}

export interface Extensions {
  readonly raw: ReadonlyMap<string, RawExtension>;
  readonly basicConstraints?: BasicConstraints;
  /** Bit mask, bit n = KeyUsage bit n (RFC 5280 §4.2.1.3). */
  readonly keyUsage?: number;
  readonly extKeyUsage?: { readonly oids: readonly string[]; readonly critical: boolean };
  readonly subjectAltName?: { readonly names: readonly GeneralName[]; readonly critical: boolean };
  readonly nameConstraints?: NameConstraintsExt;
  readonly authorityKeyId?: { readonly keyId?: Buffer; readonly hasIssuer: boolean; readonly hasSerial: boolean };
  readonly subjectKeyId?: Buffer;
  readonly certificatePolicies?: { readonly list: readonly PolicyInformation[]; readonly critical: boolean };
  readonly policyMappings?: readonly PolicyMapping[];
  readonly policyConstraints?: PolicyConstraintsExt;
  readonly inhibitAnyPolicy?: number;
}

/**
 * Extensions we process, so may be critical (RFC 5280 §4.2: a critical extension that is not
 * recognised MUST cause rejection). The four policy extensions are processed by policy-tree.ts
 * (§6.1), whatever their criticality.
 */
const MAY_BE_CRITICAL = new Set<string>([
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.subjectAltName,
  OID.nameConstraints,
  OID.certificatePolicies,
  OID.policyMappings,
  OID.policyConstraints,
  OID.inhibitAnyPolicy,
]);

/** "Conforming CAs MUST mark this extension as non-critical" (§4.2.1.1, §4.2.1.2, §4.2.2.1, §4.2.2.2). */
const MUST_NOT_BE_CRITICAL = new Set<string>([
  OID.authorityKeyIdentifier,
  OID.subjectKeyIdentifier,
  OID.authorityInfoAccess,
  OID.subjectInfoAccess,
]);

function seqOf(value: Buffer, what: string): Tlv[] {
  const items = children(readSingle(value, TAG.SEQUENCE));
  if (items.length === 0) throw new DerError(`${what}: SIZE (1..MAX) violated`);
  return items;
}

function parseBasicConstraints(value: Buffer, critical: boolean): BasicConstraints {
  const items = children(readSingle(value, TAG.SEQUENCE));
  let i = 0;
  let cA = false;
  if (items[i]?.tag === TAG.BOOLEAN) cA = decodeBoolean(items[i++] as Tlv);
  let pathLen: number | undefined;
  if (items[i]?.tag === TAG.INTEGER) pathLen = smallUint(items[i++] as Tlv);
  if (i !== items.length) throw new DerError('basicConstraints: unexpected element');
  return { cA, pathLen, critical };
}

function parseKeyUsage(value: Buffer): number {
  const { bytes } = bitString(readSingle(value, TAG.BIT_STRING));
  let mask = 0;
  for (let bit = 0; bit < bytes.length * 8 && bit < 16; bit++) {
    if (((bytes[bit >> 3] as number) & (0x80 >> (bit & 7))) !== 0) mask |= 1 << bit;
  }
  // §4.2.1.3: "When the keyUsage extension appears ... at least one of the bits MUST be set".
  if (mask === 0) throw new CertDefect('bad_extension', 'keyUsage has no bit set');
  return mask;
}

function parseSubtrees(tlv: Tlv): GeneralName[] {
  const subtrees = children(tlv);
  if (subtrees.length === 0) throw new CertDefect('bad_extension', 'nameConstraints: empty GeneralSubtrees');
  return subtrees.map((st) => {
    if (st.tag !== TAG.SEQUENCE) throw new DerError('GeneralSubtree is not a SEQUENCE');
    const [base, ...rest] = children(st);
    if (!base) throw new DerError('GeneralSubtree without base');
    // §4.2.1.10: "minimum MUST be zero" (so absent in DER) and "maximum MUST be absent".
    if (rest.length > 0) throw new CertDefect('bad_extension', 'nameConstraints: minimum/maximum present');
    return parseGeneralName(base, 'constraint');
  });
}

function parseNameConstraints(value: Buffer, critical: boolean): NameConstraintsExt {
  const items = children(readSingle(value, TAG.SEQUENCE));
  let permitted: GeneralName[] | undefined;
  let excluded: GeneralName[] | undefined;
  let i = 0;
  if (items[i]?.tag === 0xa0) permitted = parseSubtrees(items[i++] as Tlv);
  if (items[i]?.tag === 0xa1) excluded = parseSubtrees(items[i++] as Tlv);
  if (i !== items.length) throw new DerError('nameConstraints: unexpected element');
  // §4.2.1.10: "either the permittedSubtrees field or the excludedSubtrees MUST be present".
  if (!permitted && !excluded) throw new CertDefect('bad_extension', 'nameConstraints: empty');
  return { permitted: permitted ?? [], excluded: excluded ?? [], critical };
}

function parseAuthorityKeyId(value: Buffer): NonNullable<Extensions['authorityKeyId']> {
  const items = children(readSingle(value, TAG.SEQUENCE));
  let keyId: Buffer | undefined;
  let hasIssuer = false;
  let hasSerial = false;
  let i = 0;
  if (items[i]?.tag === 0x80) keyId = (items[i++] as Tlv).value;
  if (items[i]?.tag === 0xa1) {
    const names = children(items[i++] as Tlv);
    if (names.length === 0) throw new DerError('AKI: empty authorityCertIssuer');
    names.forEach((n) => parseGeneralName(n));
    hasIssuer = true;
  }
  if (items[i]?.tag === 0x82) {
    i++;
    hasSerial = true;
  }
  if (i !== items.length) throw new DerError('AKI: unexpected element');
  // §4.2.1.1: issuer and serial are present together or not at all.
  if (hasIssuer !== hasSerial) throw new CertDefect('bad_extension', 'AKI: authorityCertIssuer/SerialNumber not paired');
  return keyId ? { keyId, hasIssuer, hasSerial } : { hasIssuer, hasSerial };
}

function checkAccessDescriptions(value: Buffer, what: string): void {
  for (const ad of seqOf(value, what)) {
    if (ad.tag !== TAG.SEQUENCE) throw new DerError(`${what}: bad AccessDescription`);
    const [method, location, extra] = children(ad);
    if (!method || !location || extra) throw new DerError(`${what}: bad AccessDescription`);
    decodeOid(method);
    parseGeneralName(location);
  }
}

/** Parses `Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension` (§4.1, §4.2). */
export function parseExtensions(tlv: Tlv): Extensions {
  const list = children(readSingle(tlv.value, TAG.SEQUENCE));
  if (list.length === 0) throw new DerError('empty extensions');
  const raw = new Map<string, RawExtension>();
  for (const ext of list) {
    if (ext.tag !== TAG.SEQUENCE) throw new DerError('Extension is not a SEQUENCE');
    const parts = children(ext);
    const oid = decodeOid(parts[0] ?? ({ tag: 0, raw: Buffer.alloc(0), value: Buffer.alloc(0) } as Tlv));
    let i = 1;
    let critical = false;
    if (parts[i]?.tag === TAG.BOOLEAN) critical = decodeBoolean(parts[i++] as Tlv);
    const octets = parts[i++];
    if (!octets || octets.tag !== TAG.OCTET_STRING || i !== parts.length) throw new DerError(`extension ${oid}: bad shape`);
    // §4.2: "A certificate MUST NOT include more than one instance of a particular extension."
    if (raw.has(oid)) throw new CertDefect('duplicate_extension', `extension ${oid} appears twice`);
    raw.set(oid, { critical, value: octets.value });
  }
  const out: { -readonly [K in keyof Extensions]: Extensions[K] } = { raw };
  for (const [oid, { critical, value }] of raw) {
    if (critical && MUST_NOT_BE_CRITICAL.has(oid)) throw new CertDefect('bad_extension', `extension ${oid} must not be critical`);
    if (critical && !MAY_BE_CRITICAL.has(oid)) throw new CertDefect('unknown_critical_extension', `critical extension ${oid} not understood`);
    try {
      switch (oid) {
        case OID.basicConstraints:
          out.basicConstraints = parseBasicConstraints(value, critical);
          break;
        case OID.keyUsage:
          out.keyUsage = parseKeyUsage(value);
          break;
        case OID.extKeyUsage:
          out.extKeyUsage = { oids: seqOf(value, 'extKeyUsage').map(decodeOid), critical };
          break;
        case OID.subjectAltName:
          out.subjectAltName = { names: parseGeneralNames(value, 'san'), critical };
          break;
        case OID.nameConstraints:
          out.nameConstraints = parseNameConstraints(value, critical);
          break;
        case OID.authorityKeyIdentifier:
          out.authorityKeyId = parseAuthorityKeyId(value);
          break;
        case OID.subjectKeyIdentifier: {
          const ski = readSingle(value, TAG.OCTET_STRING).value;
          if (ski.length === 0) throw new DerError('empty SKI');
          out.subjectKeyId = ski;
          break;
        }
        case OID.authorityInfoAccess:
        case OID.subjectInfoAccess:
          checkAccessDescriptions(value, oid === OID.authorityInfoAccess ? 'AIA' : 'SIA');
          break;
        case OID.certificatePolicies:
          out.certificatePolicies = { list: parseCertificatePolicies(value, critical), critical };
          break;
        case OID.policyMappings:
          out.policyMappings = parsePolicyMappings(value);
          break;
        case OID.policyConstraints:
          out.policyConstraints = parsePolicyConstraints(value);
          break;
        case OID.inhibitAnyPolicy:
          out.inhibitAnyPolicy = parseInhibitAnyPolicy(value);
          break;
        default:
          break;
      }
    } catch (e) {
      if (e instanceof DerError) throw new CertDefect('bad_extension', `extension ${oid}: ${e.message}`);
      throw e;
    }
  }
  return out;
}
