import { OID } from './oids.js';
import { isFailure, type ParsedCert } from './parse-cert.js';
import { fail, KEY_USAGE_BITS, type Failure } from './types.js';

// TCG EK Credential Profile for TPM 2.0 (version 2.5), §3.2: the rules an EK certificate meets on
// top of RFC 5280. Checked once a path to a manufacturer root exists, so that a chain-level defect
// (signature, pathLen, name constraints...) is what a refused chain reports.

/** TCG Algorithm Registry curves an EK may use here (TPM_ECC_NIST_P256 / P384). */
const EK_CURVES = new Set(['prime256v1', 'secp384r1']);
const TPM_ATTRIBUTES = [OID.tpmManufacturer, OID.tpmModel, OID.tpmVersion];

export function checkEkProfile(c: ParsedCert): Failure | null {
  const { basicConstraints: bc, keyUsage, extKeyUsage: eku, subjectAltName: san } = c.ext;
  // §3.2.8 Basic Constraints: the EK certificate is not a CA.
  if (bc?.cA) return fail('bad_extension', 'EK certificate asserts cA');
  const key = c.publicKey;
  if (isFailure(key)) return key;
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve ?? '';
    if (!EK_CURVES.has(curve)) return fail('weak_key', `EK on curve ${curve || 'unknown'} (P-256 or P-384 required)`);
  } else if (type !== 'rsa') {
    // RSA ≥ 2048 bits is already enforced for every certificate key (signature.ts).
    return fail('unsupported_algorithm', `EK key type ${type ?? 'unknown'}`);
  }
  // §3.2.7 Key Usage: keyEncipherment for an RSA EK, keyAgreement for an ECC EK.
  const needed = type === 'rsa' ? 'keyEncipherment' : 'keyAgreement';
  if (keyUsage === undefined || (keyUsage & (1 << KEY_USAGE_BITS[needed])) === 0) return fail('key_usage', `EK certificate keyUsage lacks ${needed}`);
  // §3.2.14 Extended Key Usage: when present, tcg-kp-EKCertificate.
  if (eku && !eku.oids.includes(OID.tcgKpEkCertificate)) return fail('eku', 'EK certificate extKeyUsage lacks tcg-kp-EKCertificate');
  // §3.2.9 Subject Alternative Name: a directoryName with TPM manufacturer, model and version.
  const tpmName = san?.names.find((n) => n.type === 'dn' && TPM_ATTRIBUTES.every((t) => n.name.types.has(t)));
  if (!tpmName) return fail('bad_extension', 'EK certificate subjectAltName lacks a directoryName with TPM manufacturer, model and version');
  return null;
}
