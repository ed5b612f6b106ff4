import { createHash, type KeyObject } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import type { SignatureAlgorithm, Signer } from '../signer/signer.js';
import { p1363ToDer } from '../primitives/ecdsa-sig.js';
import { CURVES } from './ec-public-key.js';
import { findKey, type Pkcs11EcKey } from './ec-keys.js';
import { ck, ckrName, type Handle } from './module.js';
import { openPkcs11Token, type OpenTokenOptions, type Pkcs11Session } from './session.js';

export interface Pkcs11SignerOptions {
  /**
   * Sessions signing in parallel. A PKCS#11 session runs one operation at a time (§5.2), so one
   * session serialises every signature; more let libuv's pool sign concurrently. Default 1.
   */
  sessions?: number;
  /** Close the Pkcs11Session when the signer closes (set by {@link Pkcs11Signer.open}). */
  ownsSession?: boolean;
}

/**
 * A Signer whose private key stays inside a PKCS#11 token. The message is hashed in Node and
 * the digest signed with raw CKM_ECDSA: SoftHSM (and tpm2-pkcs11 for P-384) lack
 * CKM_ECDSA_SHA256/384, and hashing here keeps the long message off the token. The token's
 * r||s (PKCS#11 v2.40 curr. mech. §2.3.1) is re-encoded as DER ECDSA-Sig-Value (RFC 3279 §2.2.3).
 */
export class Pkcs11Signer implements Signer {
  readonly algorithm: SignatureAlgorithm;
  readonly publicKey: KeyObject;
  readonly key: Pkcs11EcKey;
  readonly #session: Pkcs11Session;
  readonly #ownsSession: boolean;
  readonly #idle: Handle[] = [];
  readonly #waiters: Array<(h: Handle) => void> = [];
  readonly #all: Handle[] = [];
  #closed = false;

  constructor(session: Pkcs11Session, key: Pkcs11EcKey, options: Pkcs11SignerOptions = {}) {
    const n = options.sessions ?? 1;
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new RangeError('sessions must be 1..64');
    this.#session = session;
    this.#ownsSession = options.ownsSession ?? false;
    this.key = key;
    this.algorithm = CURVES[key.curve].algorithm;
    this.publicKey = key.publicKey;
    // A borrowed session stays free for its owner (a find or generate on it while we sign would
    // hit CKR_OPERATION_ACTIVE): then every signing session is one of our own.
    if (this.#ownsSession) this.#all.push(session.handle);
    while (this.#all.length < n) this.#all.push(session.openExtraSession());
    this.#idle.push(...this.#all);
  }

  /**
   * Opens the token, finds the key by label and returns a signer owning the session.
   * @throws FleetkeyError PKCS11_TOKEN_NOT_FOUND | PKCS11_LOGIN_FAILED | PKCS11_KEY_NOT_FOUND | ...
   */
  static open(options: OpenTokenOptions & { keyLabel: string } & Omit<Pkcs11SignerOptions, 'ownsSession'>): Pkcs11Signer {
    const session = openPkcs11Token(options);
    try {
      const key = findKey(session, options.keyLabel);
      if (key === undefined) {
        throw new FleetkeyError('PKCS11_KEY_NOT_FOUND', { detail: `${options.keyLabel} on ${options.tokenLabel}` });
      }
      const signerOptions: Pkcs11SignerOptions = { ownsSession: true };
      if (options.sessions !== undefined) signerOptions.sessions = options.sessions;
      return new Pkcs11Signer(session, key, signerOptions);
    } catch (e) {
      session.close();
      throw e;
    }
  }

  async sign(data: Uint8Array): Promise<Buffer> {
    const info = CURVES[this.key.curve];
    const digest = createHash(info.hash).update(data).digest();
    const h = await this.#acquire();
    let raw: Buffer;
    try {
      this.#session.api.C_SignInit(h, { mechanism: ck.CKM_ECDSA }, this.key.privateKey);
      // Off the event loop: a network HSM can take milliseconds per signature.
      raw = await this.#session.api.C_SignAsync(h, digest, Buffer.alloc(2 * info.size));
    } catch (cause) {
      throw new FleetkeyError('PKCS11_OPERATION_FAILED', { detail: `C_Sign with ${this.key.label}: ${ckrName(cause)}`, cause });
    } finally {
      this.#release(h);
    }
    if (raw.length !== 2 * info.size) {
      throw new FleetkeyError('PKCS11_OPERATION_FAILED', { detail: `CKM_ECDSA returned ${raw.length} bytes` });
    }
    return p1363ToDer(raw);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Sessions in use finish their signature; close waits for them to come back.
    while (this.#idle.length < this.#all.length) await new Promise<Handle>((r) => this.#waiters.push(r)).then((h) => this.#idle.push(h));
    if (this.#ownsSession) this.#session.close(); // closes the extra sessions too
    else for (const h of this.#all) this.#session.closeExtraSession(h);
  }

  async #acquire(): Promise<Handle> {
    if (this.#closed) throw new FleetkeyError('PKCS11_SESSION_CLOSED', { detail: 'signer is closed' });
    const h = this.#idle.pop();
    if (h !== undefined) return h;
    return new Promise<Handle>((resolve) => this.#waiters.push(resolve));
  }

  #release(h: Handle): void {
    const next = this.#waiters.shift();
    if (next !== undefined) next(h);
    else this.#idle.push(h);
  }
}
