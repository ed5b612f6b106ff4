export { validateChain, DEFAULT_DEADLINE_MS, DEFAULT_MAX_DEPTH, DEFAULT_MAX_SIGNATURE_CHECKS, MAX_INTERMEDIATES, MAX_POOL } from './validate-chain.js';
export { KEY_USAGE_BITS } from './types.js';
export type {
  CertInput,
  KeyUsageName,
  PeerName,
  ValidationFailureCode,
  ValidationInput,
  ValidationProfile,
  ValidationResult,
} from './types.js';
export { parseCrl, MAX_CRL_BYTES, CRL_REASON_NAMES, type ParsedCrl } from './crl-parse.js';
export { checkCrlIssuer, crlDistributionPointUrls, readCrlInput, type CrlInput, type RevocationInput, type RevocationSummary } from './revocation.js';
