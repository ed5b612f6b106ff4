import { matchesPeerName } from './hostname.js';
import { isFailure, type ParsedCert } from './parse-cert.js';
import { fail, KEY_USAGE_BITS, type Failure, type KeyUsageName, type PeerName, type ValidationProfile } from './types.js';

const KEY_CERT_SIGN = 1 << KEY_USAGE_BITS.keyCertSign;
const ANY_EKU = '2.5.29.37.0';

/**
 * Checks that hold for a certificate whatever its place in a path (RFC 5280 §4.1, §4.2). Trust
 * anchors get them too: a malformed anchor is a configuration error worth refusing loudly.
 */
export function checkStructure(c: ParsedCert, profile: ValidationProfile): Failure | null {
  if (c.version !== 3) return fail('unsupported_version', `v${c.version} certificate`);
  // §4.1.2.2: positive, at most 20 octets.
  if (c.serial.length > 20) return fail('bad_serial', 'serial number longer than 20 octets');
  if (((c.serial[0] as number) & 0x80) !== 0) return fail('bad_serial', 'negative serial number');
  if (c.serial.every((b) => b === 0)) return fail('bad_serial', 'zero serial number');
  if (c.defect) return c.defect;
  // §4.1.2.4: "The issuer field MUST contain a non-empty distinguished name".
  if (c.issuer.rdns.length === 0) return fail('malformed', 'empty issuer name');
  if (isFailure(c.publicKey)) return c.publicKey;
  const { basicConstraints: bc, keyUsage, subjectAltName: san, nameConstraints: nc, authorityKeyId: aki } = c.ext;
  // §4.1.2.6 / §4.2.1.6: an empty subject needs a critical subjectAltName.
  if (c.subject.rdns.length === 0 && !san?.critical) return fail('bad_extension', 'empty subject without a critical subjectAltName');
  const isCa = bc?.cA === true;
  if (isCa) {
    if (c.subject.rdns.length === 0) return fail('malformed', 'CA certificate with an empty subject'); // §4.1.2.6
    if (keyUsage !== undefined && (keyUsage & KEY_CERT_SIGN) === 0) {
      return fail('key_usage', 'cA asserted but keyUsage lacks keyCertSign'); // §4.2.1.3 / §4.2.1.9
    }
    if (!c.ext.subjectKeyId) return fail('bad_extension', 'CA certificate without subjectKeyIdentifier'); // §4.2.1.2
  } else {
    if (bc?.pathLen !== undefined) return fail('bad_extension', 'pathLenConstraint without cA'); // §4.2.1.9
    if (keyUsage !== undefined && (keyUsage & KEY_CERT_SIGN) !== 0) return fail('key_usage', 'keyCertSign without cA'); // §4.2.1.9
    if (nc) return fail('bad_extension', 'nameConstraints in a non-CA certificate'); // §4.2.1.10
  }
  // §4.2.1.1: keyIdentifier MUST be present except in self-signed (here: self-issued) certificates.
  if (!c.selfIssued && !aki?.keyId) return fail('bad_extension', 'authorityKeyIdentifier.keyIdentifier missing');
  // §4.2.1.10 "Conforming CAs MUST mark this extension as critical"; CABF BR §7.1.2.5.2 allows not.
  if (nc && !nc.critical && profile !== 'webpki') return fail('bad_extension', 'non-critical nameConstraints');
  return null;
}

export function checkValidity(c: ParsedCert, at: Date): Failure | null {
  const t = at.getTime();
  if (t < c.notBefore.getTime()) return fail('not_yet_valid', `notBefore ${c.notBefore.toISOString()}`);
  if (t > c.notAfter.getTime()) return fail('expired', `notAfter ${c.notAfter.toISOString()}`);
  return null;
}

/** Requirements on any certificate whose key verifies another certificate (§4.2.1.9, §6.1.4 (k)). */
export function checkIssuer(c: ParsedCert): Failure | null {
  const bc = c.ext.basicConstraints;
  if (!bc) return fail('not_a_ca', 'issuer has no basicConstraints');
  if (!bc.cA) return fail('not_a_ca', 'issuer basicConstraints cA is false');
  // §4.2.1.9: "MUST mark the extension as critical in such certificates".
  if (!bc.critical) return fail('not_a_ca', 'issuer basicConstraints is not critical');
  if (c.ext.keyUsage !== undefined && (c.ext.keyUsage & KEY_CERT_SIGN) === 0) return fail('key_usage', 'issuer keyUsage lacks keyCertSign'); // §6.1.4 (n)
  return null;
}

/** CABF BR §7.1.2.1 rules for roots, applied to trust anchors under the webpki profile. */
export function checkAnchorProfile(c: ParsedCert, profile: ValidationProfile): Failure | null {
  if (profile !== 'webpki') return null;
  const aki = c.ext.authorityKeyId;
  if (aki) {
    if (aki.hasIssuer || aki.hasSerial) return fail('bad_extension', 'root AKI carries issuer/serial (BR §7.1.2.1.3)');
    if (!aki.keyId) return fail('bad_extension', 'root AKI without keyIdentifier (BR §7.1.2.1.3)');
    if (c.ext.subjectKeyId && !aki.keyId.equals(c.ext.subjectKeyId)) return fail('bad_extension', 'root AKI differs from its SKI (BR §7.1.2.1.3)');
  }
  if (c.ext.extKeyUsage) return fail('eku', 'root carries extKeyUsage (BR §7.1.2.1.2)');
  return null;
}

export interface LeafRequirements {
  readonly requiredEku: readonly string[];
  readonly requiredKeyUsage: readonly KeyUsageName[];
  readonly peerName: PeerName | undefined;
  readonly profile: ValidationProfile;
}

/** What the caller asked of the end-entity certificate (§4.2.1.3, §4.2.1.12, RFC 6125). */
export function checkLeaf(c: ParsedCert, req: LeafRequirements): Failure | null {
  const { keyUsage, extKeyUsage: eku, subjectAltName: san } = c.ext;
  if (req.profile === 'webpki') {
    if (san?.critical && c.subject.rdns.length > 0) return fail('bad_extension', 'critical SAN with a non-empty subject (BR §7.1.2.7.12)');
    if (eku?.critical) return fail('eku', 'critical extKeyUsage in a leaf (BR §7.1.2.7.6)');
    if (eku?.oids.includes(ANY_EKU)) return fail('eku', 'anyExtendedKeyUsage in a leaf (BR §7.1.2.7.10)');
  }
  if (keyUsage !== undefined) {
    for (const name of req.requiredKeyUsage) {
      if ((keyUsage & (1 << KEY_USAGE_BITS[name])) === 0) return fail('key_usage', `leaf keyUsage lacks ${name}`);
    }
  }
  // An absent EKU means "any purpose" (§4.2.1.12). anyExtendedKeyUsage never stands in for a
  // named purpose: a certificate minted for everything is not evidence of being minted for this.
  if (eku && req.requiredEku.some((oid) => !eku.oids.includes(oid))) {
    return fail('eku', `leaf extKeyUsage lacks ${req.requiredEku.filter((o) => !eku.oids.includes(o)).join(',')}`);
  }
  if (req.peerName && !matchesPeerName(san?.names, req.peerName)) {
    return fail('peer_name_mismatch', `subjectAltName does not cover the ${req.peerName.kind} peer name`);
  }
  return null;
}

/** EKU on CA certificates constrains the path (CABF BR §7.1.2.2, Mozilla/webpki practice). */
export function checkCaEku(c: ParsedCert, requiredEku: readonly string[]): Failure | null {
  const eku = c.ext.extKeyUsage;
  if (!eku || requiredEku.length === 0) return null;
  const missing = requiredEku.filter((oid) => !eku.oids.includes(oid));
  return missing.length ? fail('eku', `CA extKeyUsage lacks ${missing.join(',')}`) : null;
}
