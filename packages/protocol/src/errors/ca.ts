import type { Catalogue } from './error-spec.js';

/** Certificate authority: CSRs, certificate issuance, CRLs and OCSP. */
export const caErrors = {
  CSR_TOO_LARGE: { status: 413, message: 'The certificate signing request is too large.' },
  CSR_MALFORMED: { status: 400, message: 'The certificate signing request is malformed.' },
  CSR_SIGNATURE_ALGORITHM_NOT_ALLOWED: { status: 400, message: 'The certificate signing request uses a signature algorithm that is not allowed.' },
  CSR_SIGNATURE_INVALID: { status: 400, message: 'The certificate signing request signature does not verify.' },
  CSR_KEY_NOT_ALLOWED: { status: 400, message: 'The certificate signing request key type is not allowed.' },
  CSR_KEY_TOO_SHORT: { status: 400, message: 'The certificate signing request key is too short.' },
  CERT_PROFILE_INVALID: { status: 400, message: 'The certificate parameters do not fit the certificate profile.' },
  CERT_VALIDITY_INVALID: { status: 400, message: 'The certificate validity period is not allowed.' },
  CERT_ISSUER_INVALID: { status: 500, message: 'The issuing certificate authority is not usable.' },
  CERT_SIGNING_FAILED: { status: 500, message: 'The certificate authority could not sign.' },
  CRL_PARAMS_INVALID: { status: 400, message: 'The revocation list parameters are invalid.' },
  OCSP_REQUEST_MALFORMED: { status: 400, message: 'The OCSP request is malformed.' },
  OCSP_RESPONSE_PARAMS_INVALID: { status: 500, message: 'The OCSP response parameters are invalid.' },
  CA_ROOT_OFFLINE: { status: 409, message: 'The root CA key is not on this server.' },
  CA_ROOT_NOT_EXPORTABLE: { status: 409, message: 'The root CA key cannot be exported from its keystore.' },
  CERT_NOT_FOUND: { status: 404, message: 'No such certificate.' },
  CERT_ALREADY_REVOKED: { status: 409, message: 'The certificate is already revoked.' },
  CERT_DEVICE_NOT_ELIGIBLE: { status: 409, message: 'The device cannot receive a certificate in its current status.' },
  CERT_KEY_REUSED: { status: 409, message: 'The CSR key is already certified; a new key is required.' },
  CERT_RENEWAL_REFUSED: { status: 403, message: 'Renewal is not allowed with this credential.' },
} as const satisfies Catalogue;
