export {
  createSasToken,
  verifySasToken,
  parseSasToken,
  sasRefusalCode,
  SAS_MAX_TOKEN_LENGTH,
  SAS_MAX_RESOURCE_BYTES,
  type CreateSasTokenOptions,
  type VerifySasTokenOptions,
  type SasVerifyResult,
  type SasRefusal,
} from './sas-token.js';
export { InMemoryReplayGuard, type ReplayGuard, type ReplayVerdict, type InMemoryReplayGuardOptions } from './replay-guard.js';
export { deriveDeviceKey } from './device-key.js';
