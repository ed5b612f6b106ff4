import { children, decodeOid, DerError, readSingle, TAG, type Tlv } from './der.js';
import { OID } from './oids.js';

/** A parsed Name with a comparison key per RDN (RFC 5280 §7.1). */
export interface DistinguishedName {
  readonly raw: Buffer;
  /** One normalised key per RDN, in order. */
  readonly rdns: readonly string[];
  /** Whole-name key: equal keys mean the names match. */
  readonly key: string;
  /** emailAddress attribute values, which name constraints treat as rfc822Names (§4.2.1.10). */
  readonly emails: readonly string[];
  /** Every attribute type OID present, in any RDN. */
  readonly types: ReadonlySet<string>;
}

const STRING_TAGS = new Set<number>([
  TAG.UTF8_STRING,
  TAG.PRINTABLE_STRING,
  TAG.TELETEX_STRING,
  TAG.IA5_STRING,
  TAG.VISIBLE_STRING,
  TAG.UNIVERSAL_STRING,
  TAG.BMP_STRING,
]);

function decodeString(tlv: Tlv): string {
  switch (tlv.tag) {
    case TAG.BMP_STRING: {
      if (tlv.value.length % 2) throw new DerError('odd BMPString');
      const swapped = Buffer.from(tlv.value);
      swapped.swap16();
      return swapped.toString('utf16le');
    }
    case TAG.UNIVERSAL_STRING: {
      if (tlv.value.length % 4) throw new DerError('bad UniversalString');
      let s = '';
      for (let i = 0; i < tlv.value.length; i += 4) s += String.fromCodePoint(tlv.value.readUInt32BE(i));
      return s;
    }
    case TAG.UTF8_STRING:
      return tlv.value.toString('utf8');
    default:
      return tlv.value.toString('latin1');
  }
}

// RFC 5280 §7.1 asks for RFC 4518 string preparation; case folding plus insignificant-space
// handling covers what real issuers vary on (PrintableString vs UTF8String, case, spacing).
function normalise(s: string): string {
  return s.normalize('NFKC').toLowerCase().trim().replace(/\s+/g, ' ');
}

export function parseName(raw: Buffer): DistinguishedName {
  const seq = readSingle(raw, TAG.SEQUENCE);
  const rdns: string[] = [];
  const emails: string[] = [];
  const types = new Set<string>();
  for (const rdn of children(seq)) {
    if (rdn.tag !== TAG.SET) throw new DerError('RDN is not a SET');
    const avas = children(rdn);
    if (avas.length === 0) throw new DerError('empty RDN');
    const keys = avas.map((ava) => {
      if (ava.tag !== TAG.SEQUENCE) throw new DerError('AVA is not a SEQUENCE');
      const [typeTlv, valueTlv, extra] = children(ava);
      if (!typeTlv || !valueTlv || extra) throw new DerError('bad AVA');
      const type = decodeOid(typeTlv);
      types.add(type);
      if (STRING_TAGS.has(valueTlv.tag)) {
        const text = decodeString(valueTlv);
        if (type === OID.emailAddress) emails.push(text);
        return `${type}=s:${JSON.stringify(normalise(text))}`;
      }
      return `${type}=h:${valueTlv.raw.toString('hex')}`;
    });
    rdns.push(keys.sort().join('+'));
  }
  return { raw, rdns, key: JSON.stringify(rdns), emails, types };
}

export function namesEqual(a: DistinguishedName, b: DistinguishedName): boolean {
  return a.raw.equals(b.raw) || a.key === b.key;
}

/** RFC 5280 §4.2.1.10: a directoryName constraint matches names it is an RDN prefix of. */
export function isDnPrefix(prefix: DistinguishedName, name: DistinguishedName): boolean {
  if (prefix.rdns.length > name.rdns.length) return false;
  return prefix.rdns.every((rdn, i) => rdn === name.rdns[i]);
}
