/** Object identifiers used by the Fleetkey certificate profile. */

/**
 * Fleetkey's private arc, in the IANA Private Enterprise Number form (1.3.6.1.4.1.<PEN>). The
 * number is NOT registered with IANA: it is the ASCII bytes "fky" read as an integer
 * (0x666b79 = 6712185), two orders of magnitude above the sequentially assigned PENs (~65,000
 * in 2026), so a collision is not a practical concern; registering a PEN would add a new arc
 * here, and readers keep every arc ever written (ISSUANCE_METHOD_OIDS).
 *
 * Every arc must stay below 2^28: pyca/cryptography (its rust-asn1, Debian's 38.x) reads at most
 * four base-128 octets per arc, Go's encoding/asn1 (and so crypto/x509, which then refuses the
 * whole certificate) at most 31 bits. The previous arc, 2.25.<UUID as an integer> (ITU-T X.667
 * §6.3), has a 128-bit arc and was unreadable in both.
 */
export const FLEETKEY_OID_ARC = '1.3.6.1.4.1.6712185';

/**
 * Private, non-critical certificate extension naming the enrollment / attestation method that
 * issued the certificate (`x509:<enrollmentId>`, `operator`...), so renewal and revocation can
 * find their policy (the same idea as step-ca's provisioner extension). Value: UTF8String.
 */
export const OID_FLEETKEY_ISSUANCE_METHOD = `${FLEETKEY_OID_ARC}.1`;

/** The same extension as written by Fleetkey before the arc changed; still read, never written. */
export const OID_FLEETKEY_ISSUANCE_METHOD_LEGACY = '2.25.330633552982082953257848889899358956276.1';

export const OID = {
  // Signature algorithms (RFC 5758 §3.2, RFC 8410 §3, RFC 4055 §5, RFC 8017 App. C)
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  ed25519: '1.3.101.112',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  sha512WithRsa: '1.2.840.113549.1.1.13',
  // Hashes (RFC 3279 §2.2.1, RFC 5754 §2)
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
  // Attribute types (X.520)
  commonName: '2.5.4.3',
  serialNumber: '2.5.4.5',
  // Certificate and CRL extensions (RFC 5280 §4.2, §5.2, §5.3)
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  cRLNumber: '2.5.29.20',
  reasonCode: '2.5.29.21',
  cRLDistributionPoints: '2.5.29.31',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  kpServerAuth: '1.3.6.1.5.5.7.3.1',
  kpClientAuth: '1.3.6.1.5.5.7.3.2',
  adOcsp: '1.3.6.1.5.5.7.48.1',
  adCaIssuers: '1.3.6.1.5.5.7.48.2',
  // OCSP (RFC 6960 §4.2.1, §4.4.1)
  ocspBasic: '1.3.6.1.5.5.7.48.1.1',
  ocspNonce: '1.3.6.1.5.5.7.48.1.2',
} as const;
