import pkcs11js from 'pkcs11js';
import { FleetkeyError } from '@fleetkey/protocol';

export type Pkcs11Api = pkcs11js.PKCS11;
export type Handle = pkcs11js.Handle;
/** The constants (CKA_*, CKM_*, CKR_*...) of pkcs11js, re-exported for callers of this layer. */
export const ck = pkcs11js;

/**
 * One loaded and initialised PKCS#11 library, shared by every token session in this process.
 * A Cryptoki library is initialised once per process (PKCS#11 v2.40 §5.4: a second C_Initialize
 * returns CKR_CRYPTOKI_ALREADY_INITIALIZED, and C_Finalize would pull the rug from every other
 * user), so modules are reference-counted and finalised only when the last user releases them.
 */
export interface Pkcs11Module {
  readonly path: string;
  readonly api: Pkcs11Api;
}

interface Entry {
  module: Pkcs11Module;
  refs: number;
  ownsInit: boolean;
}

const loaded = new Map<string, Entry>();

/** Pkcs11Error carries the CKR_* code as a number; anything else is a native/load failure. */
export function ckrOf(e: unknown): number | undefined {
  return e instanceof pkcs11js.Pkcs11Error ? e.code : undefined;
}

export function ckrName(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

/**
 * Loads and initialises `path` (or takes another reference to it). Environment the module
 * reads at C_Initialize (SOFTHSM2_CONF, TPM2_PKCS11_STORE, TPM2_PKCS11_TCTI...) must be set
 * before the first acquire.
 * @throws FleetkeyError PKCS11_MODULE_LOAD_FAILED
 */
export function acquireModule(path: string): Pkcs11Module {
  const existing = loaded.get(path);
  if (existing !== undefined) {
    existing.refs++;
    return existing.module;
  }
  const api = new pkcs11js.PKCS11();
  try {
    api.load(path);
  } catch (cause) {
    throw new FleetkeyError('PKCS11_MODULE_LOAD_FAILED', { detail: `load ${path}: ${ckrName(cause)}`, cause });
  }
  let ownsInit = true;
  try {
    // OS locking: signatures run on libuv's thread pool (C_SignAsync), so calls arrive from
    // several threads and the library must serialise them itself (§5.4 CK_C_INITIALIZE_ARGS).
    api.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (cause) {
    if (ckrOf(cause) === pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      ownsInit = false; // someone else in this process initialised it; never finalise for them
    } else {
      try {
        api.close();
      } catch {
        // the load succeeded; closing a half-initialised library can only fail noisily
      }
      throw new FleetkeyError('PKCS11_MODULE_LOAD_FAILED', { detail: `C_Initialize ${path}: ${ckrName(cause)}`, cause });
    }
  }
  const module: Pkcs11Module = { path, api };
  loaded.set(path, { module, refs: 1, ownsInit });
  return module;
}

/** Drops one reference; the last one finalises and unloads the library. */
export function releaseModule(module: Pkcs11Module): void {
  const entry = loaded.get(module.path);
  if (entry === undefined || entry.module !== module) return;
  entry.refs--;
  if (entry.refs > 0) return;
  loaded.delete(module.path);
  try {
    if (entry.ownsInit) module.api.C_Finalize();
  } finally {
    module.api.close();
  }
}
