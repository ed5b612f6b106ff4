export type { KeyProtector } from './protector.js';
export { sealSecret, openSecret, sealPrivateKey, openPrivateKey } from './envelope.js';
export {
  writeEncryptedKeyFile,
  readEncryptedKeyFile,
  writeProtectedKeyFile,
  readProtectedKeyFile,
  type WriteKeyFileOptions,
} from './key-file.js';
export { loadOrCreateMasterKey, masterKeyFromEnv, parseMasterKey } from './master-key.js';
export { exportRootKey, importRootKey, ROOT_EXPORT_SCRYPT_N, type RootExportOptions } from './root-export.js';
export { makePrivateDir, readSecretFile, writeSecretFile } from './secure-fs.js';
export { SCRYPT_MIN_N, SCRYPT_MAX_N, ENVELOPE_VERSION } from './envelope-format.js';
