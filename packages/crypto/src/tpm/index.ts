export { TPM_ALG, TPMA_OBJECT, type TpmaObjectBit, type TpmHashName, type TpmCurveName } from './constants.js';
export {
  parseTpm2bPublic,
  parseTpmtPublic,
  MAX_TPM_PUBLIC_BYTES,
  type TpmPublic,
  type TpmRsaPublic,
  type TpmEccPublic,
  type TpmSymmetric,
  type TpmScheme,
} from './public-area.js';
export { tpmPublicToKeyObject } from './public-key.js';
export { computeName } from './name.js';
export { checkAkAttributes, type AkSigningParameters } from './ak-attributes.js';
export { kdfa, kdfe } from './kdf.js';
export {
  makeCredential,
  verifyCredentialProof,
  type MakeCredentialInput,
  type MakeCredentialResult,
} from './make-credential.js';
export {
  verifyEkCertificate,
  validateEkChain,
  ekCertificateFromNv,
  EK_CERT_NV_INDEX,
  type VerifyEkCertificateInput,
  type EkChainInput,
  type VerifiedEkCertificate,
} from './ek-certificate.js';
export {
  parseQuote,
  parseSignature,
  verifyQuoteSignature,
  pcrDigestOf,
  encodePcrSelection,
  readPcrSelection,
  TPM_GENERATED_VALUE,
  TPM_ST_ATTEST_QUOTE,
  MAX_ATTEST_BYTES,
  type TpmQuote,
  type TpmSignature,
  type PcrBankSelection,
} from './quote.js';
export { parseEventLog, replayEventLog, buildEventLog, EV_NO_ACTION, MAX_EVENT_LOG_BYTES, type TcgEvent } from './event-log.js';
