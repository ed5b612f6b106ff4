export {
  BaseKeystore,
  KEY_LABEL_PATTERN,
  type Keystore,
  type KeyHandle,
  type KeyCurve,
  type KeyStorage,
} from './keystore.js';
export { FileKeystore, type FileKeystoreOptions } from './file-keystore.js';
export { Pkcs11Keystore, type Pkcs11KeystoreOptions } from './pkcs11-keystore.js';
export { createCsr, type CsrOptions } from './create-csr.js';
export { encryptedPkcs8Pem, PKCS8_PBKDF2_ITERATIONS } from './encrypted-pkcs8.js';
