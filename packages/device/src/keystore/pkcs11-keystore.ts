import type { KeyObject } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import {
  ck,
  findKey,
  generateEcKeyPair,
  openPkcs11Token,
  Pkcs11Signer,
  type OpenTokenOptions,
  type Pkcs11EcKey,
  type Pkcs11Session,
  type SignatureAlgorithm,
} from '@fleetkey/crypto';
import { BaseKeystore, checkCurve, checkKeyLabel, type KeyCurve, type KeyHandle } from './keystore.js';

export type Pkcs11KeystoreOptions = OpenTokenOptions;

/** A token key: signatures happen inside the token; there is nothing to hand to Node's TLS. */
class Pkcs11KeyHandle implements KeyHandle {
  readonly storage = 'pkcs11' as const;
  readonly label: string;
  readonly curve: KeyCurve;
  readonly algorithm: SignatureAlgorithm;
  readonly publicKey: KeyObject;
  readonly spkiDer: Buffer;
  readonly #signer: Pkcs11Signer;

  constructor(signer: Pkcs11Signer) {
    this.#signer = signer;
    this.label = signer.key.label;
    this.curve = signer.key.curve;
    this.algorithm = signer.algorithm;
    this.publicKey = signer.publicKey;
    this.spkiDer = this.publicKey.export({ type: 'spki', format: 'der' });
  }

  /** The token's CKA_ID linking the key pair (and, later, its certificate object). */
  get id(): Buffer {
    return Buffer.from(this.#signer.key.id);
  }

  /** @throws FleetkeyError PKCS11_OPERATION_FAILED | PKCS11_SESSION_CLOSED */
  sign(data: Uint8Array): Promise<Buffer> {
    return this.#signer.sign(data);
  }

  /**
   * Always undefined: Node's TLS cannot use a key that lives in a token. A device with a
   * token key proves itself by signing (CSR, server nonce) and connects with a session token.
   */
  tlsKey(): undefined {
    return undefined;
  }

  close(): Promise<void> {
    return this.#signer.close();
  }
}

/**
 * Device keys generated inside a PKCS#11 token — a TPM through tpm2-pkcs11 or an HSM — as
 * token objects (CKA_TOKEN) that are sensitive and never extractable (the crypto package's
 * `generateEcKeyPair` template). The private key never exists outside the token; this
 * class only holds handles to it.
 *
 * One logged-in session per keystore; each key handle signs on a session of its own so a
 * signature never collides with a find or generate (PKCS#11 v2.40 §5.2: one active operation
 * per session).
 *
 * TPM notes (tpm2-pkcs11 1.9): use P-256; point TPM2_PKCS11_TCTI at the kernel resource
 * manager (`device:/dev/tpmrm0`). Without one (swtpm, `/dev/tpm0`) the TPM holds ~3 transient
 * objects and tpm2-pkcs11 keeps every key it used loaded until C_Finalize — and does not flush
 * a loaded key it destroys — so only one key can be in use per process lifetime there; the
 * resource manager flushes a client's objects when it disconnects.
 *
 * @example
 *   const ks = Pkcs11Keystore.open({ module: '/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so', tokenLabel: 'fleetkey', pin });
 */
export class Pkcs11Keystore extends BaseKeystore {
  readonly kind = 'pkcs11' as const;
  readonly #session: Pkcs11Session;
  readonly #handles = new Map<string, Pkcs11KeyHandle>();
  #closed = false;

  private constructor(session: Pkcs11Session) {
    super();
    this.#session = session;
  }

  /**
   * Opens and logs in to the token labelled `tokenLabel`. Environment the module reads at
   * C_Initialize (TPM2_PKCS11_TCTI, TPM2_PKCS11_STORE, SOFTHSM2_CONF) must be set first.
   * @throws FleetkeyError PKCS11_MODULE_LOAD_FAILED | PKCS11_TOKEN_NOT_FOUND | PKCS11_LOGIN_FAILED
   */
  static open(options: Pkcs11KeystoreOptions): Pkcs11Keystore {
    return new Pkcs11Keystore(openPkcs11Token(options));
  }

  get tokenLabel(): string {
    return this.#session.tokenLabel;
  }

  #live(): Pkcs11Session {
    if (this.#closed) throw new FleetkeyError('PKCS11_SESSION_CLOSED', { detail: 'keystore is closed' });
    return this.#session;
  }

  #wrap(key: Pkcs11EcKey): Pkcs11KeyHandle {
    const handle = new Pkcs11KeyHandle(new Pkcs11Signer(this.#session, key));
    this.#handles.set(key.label, handle);
    return handle;
  }

  /** @throws FleetkeyError PKCS11_KEY_EXISTS | PKCS11_OPERATION_FAILED */
  override async generateKey(label: string, curve: KeyCurve): Promise<KeyHandle> {
    checkKeyLabel(label);
    checkCurve(curve);
    const key = await generateEcKeyPair(this.#live(), { label, curve });
    return this.#wrap(key);
  }

  /** @throws FleetkeyError PKCS11_KEY_UNSUPPORTED (ambiguous label, not EC) | PKCS11_OPERATION_FAILED */
  override async getKey(label: string): Promise<KeyHandle | undefined> {
    checkKeyLabel(label);
    const session = this.#live();
    const cached = this.#handles.get(label);
    if (cached !== undefined) return cached;
    const key = findKey(session, label);
    return key === undefined ? undefined : this.#wrap(key);
  }

  /** Destroys both halves (found by the private key's CKA_ID). @throws FleetkeyError PKCS11_OPERATION_FAILED */
  override async deleteKey(label: string): Promise<boolean> {
    checkKeyLabel(label);
    const session = this.#live();
    const handle = this.#handles.get(label);
    this.#handles.delete(label);
    await handle?.close();
    const key = findKey(session, label);
    if (key === undefined) return false;
    const api = session.api;
    try {
      api.C_FindObjectsInit(session.handle, [
        { type: ck.CKA_CLASS, value: ck.CKO_PUBLIC_KEY },
        { type: ck.CKA_ID, value: key.id },
      ]);
      let publics;
      try {
        publics = api.C_FindObjects(session.handle, 16);
      } finally {
        api.C_FindObjectsFinal(session.handle);
      }
      api.C_DestroyObject(session.handle, key.privateKey);
      for (const h of publics) api.C_DestroyObject(session.handle, h);
    } catch (cause) {
      throw new FleetkeyError('PKCS11_OPERATION_FAILED', { detail: `destroy ${label}: ${String(cause)}`, cause });
    }
    return true;
  }

  override async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const h of this.#handles.values()) await h.close();
    this.#handles.clear();
    this.#session.close();
  }
}
