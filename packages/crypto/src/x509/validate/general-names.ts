import { children, decodeOid, DerError, readSingle, TAG, type Tlv } from './der.js';
import { parseName, type DistinguishedName } from './names.js';

/** RFC 5280 §4.2.1.6 GeneralName, reduced to what path validation needs. */
export type GeneralName =
  | { readonly type: 'dns'; readonly value: string }
  | { readonly type: 'email'; readonly value: string }
  | { readonly type: 'uri'; readonly value: string }
  | { readonly type: 'ip'; readonly bytes: Buffer }
  | { readonly type: 'dn'; readonly name: DistinguishedName }
  | { readonly type: 'other'; readonly kind: 'otherName' | 'x400Address' | 'ediPartyName' | 'registeredID' };

function ia5(tlv: Tlv): string {
  // IA5String is 7-bit (RFC 5280 §7.2, §7.3); a non-ASCII byte means the CA did not convert an
  // IDN to its A-label. Keep the raw bytes visible so such a name can never match an ASCII one.
  return tlv.value.toString('latin1');
}

export function parseGeneralName(tlv: Tlv): GeneralName {
  switch (tlv.tag) {
    case 0xa0: // otherName [0] IMPLICIT SEQUENCE
      return { type: 'other', kind: 'otherName' };
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
export function parseGeneralNames(der: Buffer): GeneralName[] {
  const seq = readSingle(der, TAG.SEQUENCE);
  const names = children(seq).map(parseGeneralName);
  if (names.length === 0) throw new DerError('empty GeneralNames');
  return names;
}
