import { children, decodeOid, readExactly, readTlv, type DerNode } from './der.js';
import { OID_FLEETKEY_ISSUANCE_METHOD, OID_FLEETKEY_ISSUANCE_METHOD_LEGACY } from './oids.js';

/** The extension OIDs that carry provenance, newest first: certificates issued before the arc change keep theirs. */
export const ISSUANCE_METHOD_OIDS: readonly string[] = [OID_FLEETKEY_ISSUANCE_METHOD, OID_FLEETKEY_ISSUANCE_METHOD_LEGACY];

/**
 * The issuance method (provenance) a Fleetkey certificate names in its private extension, under
 * the current OID or the legacy 2.25 one; null when the certificate carries neither or is not
 * well-formed DER. Reads only: the signature is the caller's business.
 */
export function issuanceMethodOf(certDer: Buffer): string | null {
  try {
    const tbs = children(readExactly(certDer, 0x30))[0];
    const extensions = tbs === undefined ? undefined : children(tbs).find((f) => f.tag === 0xa3);
    if (extensions === undefined) return null;
    for (const ext of children(readTlv(extensions.value))) {
      const [id, ...rest] = children(ext);
      if (id?.tag !== 0x06 || !ISSUANCE_METHOD_OIDS.includes(decodeOid(id.value))) continue;
      const value: DerNode | undefined = rest[rest.length - 1];
      if (value?.tag !== 0x04) return null;
      const text = readExactly(value.value, 0x0c); // UTF8String (RFC 5280 §4.2: extnValue wraps the DER)
      return text.value.toString('utf8');
    }
    return null;
  } catch {
    return null;
  }
}
