import type { KeyObject } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import type { Signer } from '@fleetkey/crypto';

/** Curves a device key may use; both are accepted by the Fleetkey CA's CSR policy. */
export type KeyCurve = 'P-256' | 'P-384';

/** Where a key lives; decides whether Node's TLS stack can use it directly. */
export type KeyStorage = 'file' | 'pkcs11';

/**
 * A device key the SDK can use but never read. It is a crypto `Signer`: `sign(data)` hashes with
 * the curve's hash (SHA-256 for P-256, SHA-384 for P-384) and returns a DER ECDSA-Sig-Value
 * (RFC 3279 §2.2.3), so CSRs and proofs of possession are built the same way for every keystore.
 */
export interface KeyHandle extends Signer {
  readonly label: string;
  readonly curve: KeyCurve;
  readonly storage: KeyStorage;
  /** SubjectPublicKeyInfo DER (RFC 5280 §4.1.2.7), cached. */
  readonly spkiDer: Buffer;
  /**
   * The private KeyObject for Node's TLS client (mTLS with the operational certificate), or
   * undefined when the key lives in a token. Node's TLS cannot sign a handshake through PKCS#11
   * (no OpenSSL engine/provider hook in `tls.connect`), so a device with a token key
   * authenticates with a short-lived session token obtained by signing a server nonce with
   * `sign()` instead. Node's `createSecureContext` takes PEM, not a KeyObject: export it at the
   * call site (`key.export({ type: 'pkcs8', format: 'pem' })`) and drop the string right after.
   */
  tlsKey(): KeyObject | undefined;
}

/**
 * The one keystore interface. Implementations: {@link FileKeystore} (software keys sealed at
 * rest) and {@link Pkcs11Keystore} (keys generated inside a TPM or HSM that never leave it).
 */
export interface Keystore {
  readonly kind: KeyStorage;
  /**
   * Generates a new key pair inside the keystore under `label`.
   * @throws FleetkeyError KEY_FILE_EXISTS | PKCS11_KEY_EXISTS when the label is taken
   */
  generateKey(label: string, curve: KeyCurve): Promise<KeyHandle>;
  /** The key labelled `label`, or undefined when there is none. */
  getKey(label: string): Promise<KeyHandle | undefined>;
  /** Destroys the key; returns false when there was none. Open handles to it stop working. */
  deleteKey(label: string): Promise<boolean>;
  /** Closes every handle and releases the token session / zeroes held secrets. */
  close(): Promise<void>;
}

/**
 * The base every keystore extends. Like step-ca's provisioner base, it refuses every operation:
 * a keystore that forgets to implement one fails closed instead of half-working.
 */
export abstract class BaseKeystore implements Keystore {
  abstract readonly kind: KeyStorage;

  /** The error an operation this keystore does not implement rejects with. */
  protected refusal(operation: string): FleetkeyError {
    return new FleetkeyError('INTERNAL', { detail: `${this.kind} keystore does not implement ${operation}` });
  }

  generateKey(_label: string, _curve: KeyCurve): Promise<KeyHandle> {
    return Promise.reject(this.refusal('generateKey'));
  }

  getKey(_label: string): Promise<KeyHandle | undefined> {
    return Promise.reject(this.refusal('getKey'));
  }

  deleteKey(_label: string): Promise<boolean> {
    return Promise.reject(this.refusal('deleteKey'));
  }

  async close(): Promise<void> {
    // Nothing held by the base.
  }
}

/**
 * Key labels double as file names and CKA_LABELs: ASCII, no path separators, no leading dot
 * (a hidden or relative name could escape the keystore directory).
 */
export const KEY_LABEL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function checkKeyLabel(label: string): void {
  if (typeof label !== 'string' || !KEY_LABEL_PATTERN.test(label)) {
    throw new TypeError('key label must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}');
  }
}

export function checkCurve(curve: string): asserts curve is KeyCurve {
  if (curve !== 'P-256' && curve !== 'P-384') throw new TypeError('curve must be P-256 or P-384');
}
