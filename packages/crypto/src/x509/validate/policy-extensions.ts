import { children, decodeOid, DerError, readSingle, smallUint, TAG, type Tlv } from './der.js';
import { CertDefect } from './extensions.js';
import { OID } from './oids.js';

// Decoding of the four policy extensions (RFC 5280 §4.2.1.4, §4.2.1.5, §4.2.1.11, §4.2.1.14).
// What they mean along a path is policy-tree.ts's business.

export interface PolicyInformation {
  readonly id: string;
}

export interface PolicyConstraintsExt {
  readonly requireExplicitPolicy: number | undefined;
  readonly inhibitPolicyMapping: number | undefined;
}

export interface PolicyMapping {
  readonly issuerDomainPolicy: string;
  readonly subjectDomainPolicy: string;
}

/** §4.2.1.4 DisplayText ::= CHOICE { ia5String, visibleString, bmpString, utf8String } (SIZE (1..200)). */
const DISPLAY_TEXT = new Set<number>([TAG.IA5_STRING, TAG.VISIBLE_STRING, TAG.BMP_STRING, TAG.UTF8_STRING]);

function displayText(tlv: Tlv | undefined, what: string): void {
  if (!tlv || !DISPLAY_TEXT.has(tlv.tag) || tlv.value.length === 0) throw new DerError(`${what}: not a DisplayText`);
  if (tlv.tag === TAG.IA5_STRING && tlv.value.some((b) => b > 0x7f)) throw new DerError(`${what}: IA5String with a non-ASCII octet`);
}

/** UserNotice ::= SEQUENCE { noticeRef NoticeReference OPTIONAL, explicitText DisplayText OPTIONAL }. */
function checkUserNotice(q: Tlv): void {
  if (q.tag !== TAG.SEQUENCE) throw new DerError('userNotice is not a SEQUENCE');
  const items = children(q);
  let i = 0;
  if (items[i]?.tag === TAG.SEQUENCE) {
    // NoticeReference ::= SEQUENCE { organization DisplayText, noticeNumbers SEQUENCE OF INTEGER }
    const [org, numbers, extra] = children(items[i++] as Tlv);
    displayText(org, 'noticeRef.organization');
    if (!numbers || numbers.tag !== TAG.SEQUENCE || extra) throw new DerError('bad NoticeReference');
    for (const n of children(numbers)) if (n.tag !== TAG.INTEGER) throw new DerError('noticeNumbers: not an INTEGER');
  }
  if (i < items.length) displayText(items[i++], 'explicitText');
  if (i !== items.length) throw new DerError('userNotice: unexpected element');
}

/**
 * certificatePolicies ::= SEQUENCE SIZE (1..MAX) OF PolicyInformation. Qualifiers are decoded when
 * they are the two §4.2.1.4 defines (CPS pointer, user notice); any other qualifier refuses the
 * certificate when the extension is critical ("processing ... any unrecognized qualifier ... MUST
 * reject", §4.2.1.4) and is ignored otherwise.
 */
export function parseCertificatePolicies(value: Buffer, critical: boolean): PolicyInformation[] {
  const list = children(readSingle(value, TAG.SEQUENCE));
  if (list.length === 0) throw new DerError('certificatePolicies: SIZE (1..MAX) violated');
  const seen = new Set<string>();
  return list.map((pi) => {
    if (pi.tag !== TAG.SEQUENCE) throw new DerError('bad PolicyInformation');
    const [idTlv, qualifiers, extra] = children(pi);
    if (!idTlv || extra) throw new DerError('bad PolicyInformation');
    const id = decodeOid(idTlv);
    // §4.2.1.4: "A certificate policy OID MUST NOT appear more than once".
    if (seen.has(id)) throw new CertDefect('bad_extension', `certificatePolicies: ${id} appears twice`);
    seen.add(id);
    if (qualifiers) {
      if (qualifiers.tag !== TAG.SEQUENCE) throw new DerError('bad policyQualifiers');
      const qs = children(qualifiers);
      if (qs.length === 0) throw new DerError('policyQualifiers: SIZE (1..MAX) violated');
      for (const pq of qs) {
        if (pq.tag !== TAG.SEQUENCE) throw new DerError('bad PolicyQualifierInfo');
        const [qid, q, more] = children(pq);
        if (!qid || !q || more) throw new DerError('bad PolicyQualifierInfo');
        const qualifierId = decodeOid(qid);
        if (qualifierId === OID.qtCps) {
          // CPSuri ::= IA5String
          if (q.tag !== TAG.IA5_STRING || q.value.some((b) => b > 0x7f)) throw new DerError('CPS qualifier is not an IA5String');
        } else if (qualifierId === OID.qtUnotice) {
          checkUserNotice(q);
        } else if (critical) {
          throw new CertDefect('bad_extension', `critical certificatePolicies with unknown qualifier ${qualifierId}`);
        }
      }
    }
    return { id };
  });
}

/** PolicyMappings ::= SEQUENCE SIZE (1..MAX) OF SEQUENCE { issuerDomainPolicy, subjectDomainPolicy }. */
export function parsePolicyMappings(value: Buffer): PolicyMapping[] {
  const list = children(readSingle(value, TAG.SEQUENCE));
  if (list.length === 0) throw new DerError('policyMappings: SIZE (1..MAX) violated');
  return list.map((m) => {
    if (m.tag !== TAG.SEQUENCE) throw new DerError('bad PolicyMapping');
    const [a, b, extra] = children(m);
    if (!a || !b || extra) throw new DerError('bad PolicyMapping');
    return { issuerDomainPolicy: decodeOid(a), subjectDomainPolicy: decodeOid(b) };
  });
}

/** SkipCerts ::= INTEGER (0..MAX), here the contents of an IMPLICIT [n] tag. */
const skipCerts = (tlv: Tlv): number => smallUint({ ...tlv, tag: TAG.INTEGER });

/** PolicyConstraints ::= SEQUENCE { requireExplicitPolicy [0] SkipCerts OPTIONAL, inhibitPolicyMapping [1] SkipCerts OPTIONAL }. */
export function parsePolicyConstraints(value: Buffer): PolicyConstraintsExt {
  const items = children(readSingle(value, TAG.SEQUENCE));
  let i = 0;
  let requireExplicitPolicy: number | undefined;
  let inhibitPolicyMapping: number | undefined;
  if (items[i]?.tag === 0x80) requireExplicitPolicy = skipCerts(items[i++] as Tlv);
  if (items[i]?.tag === 0x81) inhibitPolicyMapping = skipCerts(items[i++] as Tlv);
  if (i !== items.length) throw new DerError('policyConstraints: unexpected element');
  // §4.2.1.11: "Conforming CAs MUST NOT issue certificates where policy constraints is an empty sequence."
  if (i === 0) throw new CertDefect('bad_extension', 'policyConstraints is an empty sequence');
  return { requireExplicitPolicy, inhibitPolicyMapping };
}

/** InhibitAnyPolicy ::= SkipCerts. */
export const parseInhibitAnyPolicy = (value: Buffer): number => smallUint(readSingle(value, TAG.INTEGER));
