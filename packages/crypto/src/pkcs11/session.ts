import { FleetkeyError } from '@fleetkey/protocol';
import { acquireModule, ck, ckrName, ckrOf, releaseModule, type Handle, type Pkcs11Api, type Pkcs11Module } from './module.js';

export interface OpenTokenOptions {
  /** Path of the PKCS#11 library: SoftHSM2, tpm2-pkcs11, a vendor HSM. */
  module: string;
  /** CKA token label (CK_TOKEN_INFO.label, unpadded). Slots are found by label, not number: SoftHSM renumbers them. */
  tokenLabel: string;
  /** User PIN. Never logged. */
  pin: string;
}

/** PKCS#11 v2.40 §3.2: labels are 32 bytes, blank-padded. */
const LABEL_BYTES = 32;

function tokenLabelOf(api: Pkcs11Api, slot: Handle): { label: string; initialized: boolean } {
  const info = api.C_GetTokenInfo(slot);
  return { label: info.label.replace(/[\s\0]+$/, ''), initialized: (info.flags & ck.CKF_TOKEN_INITIALIZED) !== 0 };
}

function findSlot(api: Pkcs11Api, tokenLabel: string): Handle {
  const matches = api.C_GetSlotList(true).filter((slot) => {
    const t = tokenLabelOf(api, slot);
    return t.initialized && t.label === tokenLabel;
  });
  if (matches.length !== 1) {
    throw new FleetkeyError('PKCS11_TOKEN_NOT_FOUND', {
      detail: matches.length === 0 ? `no token labelled ${tokenLabel}` : `${matches.length} tokens labelled ${tokenLabel}`,
    });
  }
  return matches[0]!;
}

function wrap<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (cause) {
    throw new FleetkeyError('PKCS11_OPERATION_FAILED', { detail: `${what}: ${ckrName(cause)}`, cause });
  }
}

/**
 * A logged-in read/write session on one token: the generic layer shared by the CA (SoftHSM, a
 * network HSM) and the device SDK (tpm2-pkcs11). Nothing here is specific to one library.
 * Extra sessions can be opened for parallel operations; they share the login (PKCS#11 v2.40
 * §5.6: the login state belongs to the application, not the session).
 */
export class Pkcs11Session {
  readonly module: Pkcs11Module;
  readonly slot: Handle;
  readonly tokenLabel: string;
  #handle: Handle | undefined;
  readonly #extra = new Set<Handle>();

  private constructor(module: Pkcs11Module, slot: Handle, tokenLabel: string, handle: Handle) {
    this.module = module;
    this.slot = slot;
    this.tokenLabel = tokenLabel;
    this.#handle = handle;
  }

  /** @internal use {@link openPkcs11Token} */
  static open(options: OpenTokenOptions): Pkcs11Session {
    const module = acquireModule(options.module);
    let handle: Handle | undefined;
    try {
      const slot = findSlot(module.api, options.tokenLabel);
      handle = wrap('C_OpenSession', () => module.api.C_OpenSession(slot, ck.CKF_SERIAL_SESSION | ck.CKF_RW_SESSION));
      try {
        module.api.C_Login(handle, ck.CKU_USER, options.pin);
      } catch (cause) {
        // Another session of this process already logged in to this token: that is our login too.
        if (ckrOf(cause) !== ck.CKR_USER_ALREADY_LOGGED_IN) {
          throw new FleetkeyError('PKCS11_LOGIN_FAILED', { detail: `C_Login on ${options.tokenLabel}: ${ckrName(cause)}`, cause });
        }
      }
      return new Pkcs11Session(module, slot, options.tokenLabel, handle);
    } catch (e) {
      if (handle !== undefined) {
        const h = handle;
        try {
          module.api.C_CloseSession(h);
        } catch {
          // already failing; the original error is the one worth reporting
        }
      }
      releaseModule(module);
      throw e;
    }
  }

  get api(): Pkcs11Api {
    return this.module.api;
  }

  get closed(): boolean {
    return this.#handle === undefined;
  }

  /** @throws FleetkeyError PKCS11_SESSION_CLOSED */
  get handle(): Handle {
    if (this.#handle === undefined) throw new FleetkeyError('PKCS11_SESSION_CLOSED');
    return this.#handle;
  }

  /** Another R/W session on the same token, already logged in; close it with {@link closeExtraSession}. */
  openExtraSession(): Handle {
    void this.handle; // throws when closed
    const h = wrap('C_OpenSession', () => this.api.C_OpenSession(this.slot, ck.CKF_SERIAL_SESSION | ck.CKF_RW_SESSION));
    this.#extra.add(h);
    return h;
  }

  closeExtraSession(h: Handle): void {
    if (!this.#extra.delete(h)) return;
    wrap('C_CloseSession', () => this.api.C_CloseSession(h));
  }

  /**
   * Closes this session and its extra sessions. No C_Logout: that would log out every other
   * session of the process on this token; the token reverts to public when its last session
   * closes (§5.6 C_CloseSession).
   */
  close(): void {
    const h = this.#handle;
    if (h === undefined) return;
    this.#handle = undefined;
    try {
      for (const x of this.#extra) {
        try {
          this.api.C_CloseSession(x);
        } catch {
          // keep closing the rest
        }
      }
      this.#extra.clear();
      this.api.C_CloseSession(h);
    } finally {
      releaseModule(this.module);
    }
  }
}

/**
 * Finds the token by label, opens a R/W session and logs in as user.
 * @throws FleetkeyError PKCS11_MODULE_LOAD_FAILED | PKCS11_TOKEN_NOT_FOUND | PKCS11_LOGIN_FAILED
 * @example const s = openPkcs11Token({ module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'fleetkey-ca', pin })
 */
export function openPkcs11Token(options: OpenTokenOptions): Pkcs11Session {
  return Pkcs11Session.open(options);
}

export interface InitTokenOptions {
  module: string;
  /** Label for the new token (at most 32 bytes). */
  label: string;
  soPin: string;
  pin: string;
}

/**
 * Initialises a fresh token in the first uninitialised slot and sets its user PIN, from Node:
 * for libraries without a CLI of their own (tpm2-pkcs11 on a device's first boot).
 * @throws FleetkeyError PKCS11_TOKEN_NOT_FOUND when no free slot exists
 */
export function initPkcs11Token(options: InitTokenOptions): void {
  const labelBytes = Buffer.from(options.label, 'utf8');
  if (labelBytes.length === 0 || labelBytes.length > LABEL_BYTES) throw new RangeError('token label must be 1..32 bytes');
  const module = acquireModule(options.module);
  try {
    const api = module.api;
    const free = api.C_GetSlotList(true).find((slot) => !tokenLabelOf(api, slot).initialized);
    if (free === undefined) throw new FleetkeyError('PKCS11_TOKEN_NOT_FOUND', { detail: 'no uninitialised token slot' });
    // Pad to 32 *bytes*: padEnd counts UTF-16 units, so subtract the extra bytes of multi-byte chars.
    const padded = options.label.padEnd(LABEL_BYTES - (labelBytes.length - options.label.length), ' ');
    wrap('C_InitToken', () => api.C_InitToken(free, options.soPin, padded));
    // C_InitToken may renumber slots (SoftHSM does): find the new token again by label.
    const slot = findSlot(api, options.label);
    const s = wrap('C_OpenSession', () => api.C_OpenSession(slot, ck.CKF_SERIAL_SESSION | ck.CKF_RW_SESSION));
    try {
      wrap('C_Login(SO)', () => api.C_Login(s, ck.CKU_SO, options.soPin));
      wrap('C_InitPIN', () => api.C_InitPIN(s, options.pin));
      wrap('C_Logout', () => api.C_Logout(s));
    } finally {
      api.C_CloseSession(s);
    }
  } finally {
    releaseModule(module);
  }
}
