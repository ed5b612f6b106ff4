/**
 * Node's failures to trust the server's certificate chain or name. Retrying cannot fix a server
 * this device does not trust (or a man in the middle), so both the provisioning client and the
 * gateway connection stop on them.
 */
export const UNTRUSTED_SERVER = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'INVALID_CA',
]);

/**
 * The server's certificate outside its validity period. Final for one provisioning run; the
 * long-lived gateway connection keeps retrying, since the operator can renew the server's
 * certificate during the device's life.
 */
export const SERVER_CERT_OUT_OF_VALIDITY = new Set(['CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED']);
