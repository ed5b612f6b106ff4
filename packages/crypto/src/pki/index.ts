// PKI building blocks of the Fleetkey CA. Every signature goes through a Signer.
export { parseAndVerifyCsr, DEFAULT_CSR_MAX_BYTES, type CsrPolicy, type CsrKeyType, type VerifiedCsr } from './csr.js';
export {
  MAX_CLOCK_SKEW_MS,
  NO_WELL_DEFINED_EXPIRATION,
  randomSerial,
  type DeviceCertificateKind,
  type DeviceCertificateRequest,
  type IssuedCertificate,
} from './device-profile.js';
export { createIssuerTemplate, type IssuerTemplate, type IssuerTemplateOptions } from './issuer-template.js';
export { issueDeviceCertificate } from './device-cert-fast.js';
export { issueDeviceCertificateWithLibrary } from './device-cert-library.js';
export {
  createRootCa,
  createIntermediateCa,
  issueServerCertificate,
  type Validity,
  type RootCaOptions,
  type IntermediateCaOptions,
  type ServerCertificateOptions,
} from './ca-certificates.js';
export { buildCrl, CRL_REASONS, type CrlReason, type CrlEntry, type BuildCrlOptions } from './crl.js';
export { readVerifiedCrl, type VerifiedCrl } from './crl-read.js';
export {
  parseOcspRequest,
  ocspRequestFromGetPath,
  certIdMatchesIssuer,
  OCSP_MAX_REQUEST_BYTES,
  type OcspCertId,
  type ParsedOcspRequest,
} from './ocsp-request.js';
export {
  buildOcspResponse,
  buildOcspError,
  OCSP_ERROR_STATUS,
  type OcspCertStatus,
  type OcspErrorStatus,
  type OcspSingleResponse,
  type BuildOcspResponseOptions,
} from './ocsp-response.js';
export { FLEETKEY_OID_ARC, OID_FLEETKEY_ISSUANCE_METHOD, OID_FLEETKEY_ISSUANCE_METHOD_LEGACY } from './oids.js';
export { issuanceMethodOf, ISSUANCE_METHOD_OIDS } from './provenance.js';
export { toPem } from './pem.js';
