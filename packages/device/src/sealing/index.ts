export { DeviceSealer, DEFAULT_SEAL_PCRS, SEALED_SECRET_FILE, type DeviceSealerOptions } from './device-sealer.js';
export { sealToTpm, unsealFromTpm, MAX_SEALED_BYTES } from './tpm-seal.js';
export { decodeSealed, encodeSealed, type SealedObject } from './sealed-file.js';
