import type { X509Certificate } from 'node:crypto';
import type { RevocationInput, RevocationSummary } from './revocation.js';

/** RFC 5280 §4.2.1.3 key usage bits, by their current names. */
export type KeyUsageName =
  | 'digitalSignature'
  | 'contentCommitment'
  | 'keyEncipherment'
  | 'dataEncipherment'
  | 'keyAgreement'
  | 'keyCertSign'
  | 'cRLSign'
  | 'encipherOnly'
  | 'decipherOnly';

/** Bit positions of {@link KeyUsageName} in the KeyUsage BIT STRING. */
export const KEY_USAGE_BITS: Readonly<Record<KeyUsageName, number>> = {
  digitalSignature: 0,
  contentCommitment: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
  encipherOnly: 7,
  decipherOnly: 8,
};

/**
 * Which profile's extra rules apply on top of the RFC 5280 checks that are always made.
 * - `rfc5280` (default): RFC 5280 conformance, including "MUST be critical" on nameConstraints.
 * - `webpki`: the CA/Browser Forum TLS profile: nameConstraints may be non-critical (BR
 *   §7.1.2.5.2), root AKI must be key-identifier only and equal to its SKI (BR §7.1.2.1.3), roots
 *   carry no EKU (BR §7.1.2.1.2), the leaf EKU is non-critical (BR §7.1.2.7.6) and its SAN is
 *   critical only when the subject is empty (BR §7.1.2.7.12).
 * - `tcg-ek`: TPM endorsement key certificates (TCG EK Credential Profile for TPM 2.0 §3.2) on
 *   top of `rfc5280`: the leaf is an end entity with a subjectAltName directoryName naming the TPM
 *   manufacturer, model and version, keyUsage keyEncipherment (RSA) or keyAgreement (ECC), an EKU
 *   (when present) with tcg-kp-EKCertificate, an RSA ≥ 2048 or P-256/P-384 key; no peer name.
 */
export type ValidationProfile = 'rfc5280' | 'webpki' | 'tcg-ek';

export type PeerName = { kind: 'dns' | 'ip'; value: string };

export type CertInput = X509Certificate | Buffer | Uint8Array;

export interface ValidationInput {
  leaf: CertInput;
  intermediates?: readonly CertInput[];
  trustAnchors: readonly CertInput[];
  /** Validation instant; defaults to now. */
  time?: Date;
  /** EKU OIDs the leaf must carry (when it has an EKU extension at all). */
  requiredEku?: readonly string[];
  /** Key usage bits the leaf must assert (when it has a keyUsage extension at all). */
  requiredKeyUsage?: readonly KeyUsageName[];
  /** A DNS name or IP address the leaf's subjectAltName must cover. */
  peerName?: PeerName;
  /** Most non-self-issued intermediates between leaf and anchor (default 8). */
  maxDepth?: number;
  /** Most signature verifications performed for this call (default 64). */
  maxSignatureChecks?: number;
  /** Wall-clock budget for this call in milliseconds (default 2000). */
  deadlineMs?: number;
  profile?: ValidationProfile;
  /** RFC 5280 §6.1.1 (c) user-initial-policy-set: policy OIDs the caller accepts (default anyPolicy). */
  initialPolicySet?: readonly string[];
  /** RFC 5280 §6.1.1 (f) initial-explicit-policy: the path must be valid for a policy in the set (default false). */
  initialExplicitPolicy?: boolean;
  /** RFC 5280 §6.1.1 (e) initial-policy-mapping-inhibit (default false). */
  initialPolicyMappingInhibit?: boolean;
  /** RFC 5280 §6.1.1 (g) initial-any-policy-inhibit (default false). */
  initialAnyPolicyInhibit?: boolean;
  /** CRLs to check every certificate of the path but the anchor against (RFC 5280 §6.3); none: no revocation check. */
  revocation?: RevocationInput;
}

/** Closed set of refusal reasons; callers branch on these, never on `detail`. */
export type ValidationFailureCode =
  | 'invalid_input'
  | 'malformed'
  | 'unsupported_version'
  | 'bad_serial'
  | 'duplicate_extension'
  | 'bad_extension'
  | 'unknown_critical_extension'
  | 'unsupported_algorithm'
  | 'weak_key'
  | 'expired'
  | 'not_yet_valid'
  | 'untrusted'
  | 'bad_signature'
  | 'not_a_ca'
  | 'path_len_exceeded'
  | 'max_depth_exceeded'
  | 'key_usage'
  | 'eku'
  | 'name_constraints'
  | 'peer_name_mismatch'
  | 'policy'
  | 'work_limit'
  | 'revoked'
  | 'revocation_unknown';

export type ValidationResult =
  /**
   * `chain` runs leaf first, anchor last. `policies` is the user-constrained policy set (RFC 5280
   * §6.1.5(g)): the caller's accepted policies the path is valid for, empty when no certificate
   * policy survives (allowed unless an explicit policy was required). `revocation` is set when
   * CRLs were given (RFC 5280 §6.3).
   */
  | { ok: true; chain: X509Certificate[]; policies: string[]; revocation?: RevocationSummary }
  | { ok: false; reason: ValidationFailureCode; detail: string };

/** Internal failure value; `detail` is for logs only. */
export interface Failure {
  readonly code: ValidationFailureCode;
  readonly detail: string;
}

export const fail = (code: ValidationFailureCode, detail: string): Failure => ({ code, detail });
