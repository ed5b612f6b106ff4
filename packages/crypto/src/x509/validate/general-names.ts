import { children, decodeOid, DerError, readSingle, TAG, type Tlv } from './der.js';
import { isValidDnsName, isValidMailbox } from './hostname.js';
import { parseName, type DistinguishedName } from './names.js';

/** RFC 5280 §4.2.1.6 GeneralName, reduced to what path validation needs. */
export type GeneralName =
  | { readonly type: 'dns'; readonly value: string }
  | { readonly type: 'email'; readonly value: string }
  | { readonly type: 'uri'; readonly value: string }
  | { readonly type: 'ip'; readonly bytes: Buffer }
  | { readonly type: 'dn'; readonly name: DistinguishedName }
  | { readonly type: 'other'; readonly kind: 'otherName' | 'x400Address' | 'ediPartyName' | 'registeredID' };

/**
 * Where a name sits decides its syntax: a subjectAltName entry names one thing (§4.2.1.6), a
 * name-constraint base names a subtree (§4.2.1.10: empty or leading-dot domains, address + mask),
 * elsewhere (AKI issuer, access locations) only the encoding is checked.
 */
export type NameUse = 'san' | 'constraint' | 'other';

function ia5(tlv: Tlv): string {
  // IA5String is 7-bit (RFC 5280 §7.2, §7.3): a non-ASCII octet means, e.g., an IDN not
  // converted to its A-label; such a name is refused rather than compared byte-wise.
  if (tlv.value.some((b) => b > 0x7f)) throw new DerError('IA5String with a non-ASCII octet');
  return tlv.value.toString('latin1');
}

// RFC 3986 §3: scheme ":" followed by unreserved / reserved characters and percent-encodings.
const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:(?:[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+$/;

function checkSanSyntax(name: GeneralName): void {
  switch (name.type) {
    case 'dns':
      // §4.2.1.6: preferred name syntax (RFC 1034 §3.5); " " MUST NOT be used. A wildcard only as
      // the whole leftmost label is left to peer-name matching.
      if (!isValidDnsName(name.value, true)) throw new DerError('subjectAltName dNSName is not a valid domain name');
      return;
    case 'email':
      if (!isValidMailbox(name.value)) throw new DerError('subjectAltName rfc822Name is not a mailbox');
      return;
    case 'uri':
      // §4.2.1.6: "MUST NOT be a relative URI ... MUST include both a scheme ... and a scheme-specific-part".
      if (!ABSOLUTE_URI.test(name.value)) throw new DerError('subjectAltName URI is not an absolute RFC 3986 URI');
      return;
    case 'ip':
      // §4.2.1.6: "four octets" (IPv4) or "16 octets" (IPv6).
      if (name.bytes.length !== 4 && name.bytes.length !== 16) throw new DerError(`subjectAltName iPAddress of ${name.bytes.length} octets`);
      return;
    default:
      return;
  }
}

export function parseGeneralName(tlv: Tlv, use: NameUse = 'other'): GeneralName {
  const name = decode(tlv);
  if (use === 'san') checkSanSyntax(name);
  // §4.2.1.10: an address followed by its mask, 8 octets for IPv4 and 32 for IPv6.
  if (use === 'constraint' && name.type === 'ip' && name.bytes.length !== 8 && name.bytes.length !== 32) {
    throw new DerError(`iPAddress name constraint of ${name.bytes.length} octets`);
  }
  return name;
}

function decode(tlv: Tlv): GeneralName {
  switch (tlv.tag) {
    case 0xa0: {
      // otherName [0] IMPLICIT SEQUENCE { type-id OID, value [0] EXPLICIT ANY }
      const [typeId, value, extra] = children(tlv);
      if (!typeId || !value || value.tag !== 0xa0 || extra) throw new DerError('bad otherName');
      decodeOid(typeId);
      return { type: 'other', kind: 'otherName' };
    }
    case 0x81:
      return { type: 'email', value: ia5(tlv) };
    case 0x82:
      return { type: 'dns', value: ia5(tlv) };
    case 0xa3:
      return { type: 'other', kind: 'x400Address' };
    case 0xa4: {
      // directoryName [4] is EXPLICIT because Name is a CHOICE (X.680 §31.2.7).
      const inner = children(tlv);
      if (inner.length !== 1 || inner[0]?.tag !== TAG.SEQUENCE) throw new DerError('bad directoryName');
      return { type: 'dn', name: parseName(inner[0].raw) };
    }
    case 0xa5:
      return { type: 'other', kind: 'ediPartyName' };
    case 0x86:
      return { type: 'uri', value: ia5(tlv) };
    case 0x87:
      return { type: 'ip', bytes: tlv.value };
    case 0x88:
      decodeOid({ ...tlv, tag: TAG.OID });
      return { type: 'other', kind: 'registeredID' };
    default:
      throw new DerError(`unknown GeneralName tag 0x${tlv.tag.toString(16)}`);
  }
}

/** GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName. */
export function parseGeneralNames(der: Buffer, use: NameUse = 'other'): GeneralName[] {
  const seq = readSingle(der, TAG.SEQUENCE);
  const names = children(seq).map((n) => parseGeneralName(n, use));
  if (names.length === 0) throw new DerError('empty GeneralNames');
  return names;
}
