import type { Catalogue } from './error-spec.js';

/**
 * Key custody, PKCS#11 and symmetric-token errors. Key-file and token errors are operator-side
 * (500/503): a device never sees them. SAS refusals all read the same to the caller so a forger
 * learns nothing about which check failed; the reason goes to the audit log.
 */
export const cryptoErrors = {
  DECRYPT_FAILED: { status: 400, message: 'The encrypted data could not be authenticated.' },

  KEY_FILE_NOT_FOUND: { status: 500, message: 'A key file is missing.' },
  KEY_FILE_PERMISSIONS: { status: 500, message: 'A key file is accessible to other users; refusing to use it.' },
  KEY_FILE_EXISTS: { status: 409, message: 'A key file already exists; refusing to overwrite it.' },
  KEY_FILE_CORRUPT: { status: 500, message: 'A key file could not be decrypted.' },
  KEY_FILE_UNSUPPORTED: { status: 500, message: 'A key file has an unsupported format or parameters.' },
  KEY_FILE_WRONG_PURPOSE: { status: 500, message: 'A key file is not for this purpose.' },
  MASTER_KEY_INVALID: { status: 500, message: 'The master key is invalid.' },

  PKCS11_MODULE_LOAD_FAILED: { status: 503, message: 'The PKCS#11 module could not be loaded.' },
  PKCS11_TOKEN_NOT_FOUND: { status: 503, message: 'The PKCS#11 token was not found.' },
  PKCS11_LOGIN_FAILED: { status: 503, message: 'Login to the PKCS#11 token failed.' },
  PKCS11_KEY_NOT_FOUND: { status: 500, message: 'The key was not found on the PKCS#11 token.' },
  PKCS11_KEY_EXISTS: { status: 409, message: 'A key with this label already exists on the PKCS#11 token.' },
  PKCS11_KEY_UNSUPPORTED: { status: 500, message: 'The key on the PKCS#11 token is not supported.' },
  PKCS11_SESSION_CLOSED: { status: 500, message: 'The PKCS#11 session is closed.' },
  PKCS11_OPERATION_FAILED: { status: 500, message: 'A PKCS#11 operation failed.' },

  SAS_TOKEN_MALFORMED: { status: 401, message: 'The access token was refused.' },
  SAS_TOKEN_INVALID: { status: 401, message: 'The access token was refused.' },
  SAS_TOKEN_EXPIRED: { status: 401, message: 'The access token was refused.' },
  SAS_TOKEN_REPLAYED: { status: 401, message: 'The access token was refused.' },
} as const satisfies Catalogue;
