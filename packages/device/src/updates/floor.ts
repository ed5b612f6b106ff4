import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isFleetkeyError } from '@fleetkey/protocol';
import { openSecret, readSecretFile, sealSecret, writeSecretFile, zero, type KeyProtector } from '@fleetkey/crypto';
import { refuse } from './refusal.js';

/**
 * What the device must never forget between updates: the anti-rollback floor (a version below
 * it is refused even when signed), what is installed, and the director counter of that install.
 */
export interface FloorState {
  /** Lowest version this device may run (semver), or null before any floor was set. */
  readonly floor: string | null;
  readonly installedVersion: string | null;
  readonly installedReleaseId: string | null;
  /** Director counter (Uptane targets `custom.counter`) of the last install. */
  readonly counter: number;
}

export const EMPTY_FLOOR: FloorState = { floor: null, installedVersion: null, installedReleaseId: null, counter: 0 };

/**
 * Where the floor is kept. `read` fails closed (UPDATE_FLOOR_INVALID) on anything but an intact,
 * current state; `write` replaces it.
 */
export interface FloorStore {
  readonly kind: 'file' | 'tpm';
  /** `existed: false` only when no state was ever written (first run). */
  read(): Promise<{ state: FloorState; existed: boolean }>;
  write(state: FloorState): Promise<void>;
  close(): Promise<void>;
}

export const FLOOR_FILE = 'floor.sealed';
const LABEL = 'device/update-floor';

/** The JSON inside the sealed envelope; `nv` binds it to a TPM NV counter value (tpm-floor.ts). */
interface Sealed extends FloorState {
  readonly v: 1;
  readonly nv: string | null;
}

export async function readSealed(path: string, protector: KeyProtector): Promise<Sealed | null> {
  let bytes: Buffer;
  try {
    bytes = await readSecretFile(path);
  } catch (e) {
    if (isFleetkeyError(e) && e.code === 'KEY_FILE_NOT_FOUND') return null;
    throw refuse('UPDATE_FLOOR_INVALID', `floor file unreadable: ${isFleetkeyError(e) ? e.code : String(e)}`, e);
  }
  let plain: Buffer;
  try {
    // AES-256-GCM under the device's protector (machine secret or passphrase): any change to the
    // file fails its tag, so a tampered floor is refused, never read as a lower one.
    plain = await openSecret(bytes, protector, LABEL);
  } catch (e) {
    throw refuse('UPDATE_FLOOR_INVALID', `floor file does not authenticate: ${isFleetkeyError(e) ? e.code : String(e)}`, e);
  }
  try {
    const s = JSON.parse(plain.toString('utf8')) as Sealed;
    if (s.v !== 1 || typeof s.counter !== 'number') throw new Error('shape');
    return s;
  } catch (e) {
    throw refuse('UPDATE_FLOOR_INVALID', 'floor file content is not a floor state', e);
  } finally {
    zero(plain);
  }
}

export async function writeSealed(path: string, protector: KeyProtector, state: FloorState, nv: string | null): Promise<void> {
  const s: Sealed = { v: 1, floor: state.floor, installedVersion: state.installedVersion, installedReleaseId: state.installedReleaseId, counter: state.counter, nv };
  await writeSecretFile(path, await sealSecret(Buffer.from(JSON.stringify(s)), protector, LABEL), { overwrite: true });
}

/**
 * The floor in a sealed file (devices without a TPM). Integrity: the envelope's tag. Deletion:
 * once the updater has trusted metadata (`trustedMetadataExists`), a missing file is refused
 * rather than read as "no floor". What a file cannot give is freshness: someone who can write
 * the device's disk can put back an older sealed file. The TPM store closes that gap.
 */
export class FileFloorStore implements FloorStore {
  readonly kind = 'file' as const;
  readonly #path: string;

  constructor(
    dir: string,
    private readonly protector: KeyProtector,
    private readonly trustedMetadataExists: () => Promise<boolean>,
  ) {
    this.#path = join(dir, FLOOR_FILE);
  }

  async read(): Promise<{ state: FloorState; existed: boolean }> {
    const s = await readSealed(this.#path, this.protector);
    if (s === null) {
      if (await this.trustedMetadataExists()) throw refuse('UPDATE_FLOOR_INVALID', 'floor file missing while the device already trusts update metadata');
      return { state: EMPTY_FLOOR, existed: false };
    }
    return { state: strip(s), existed: true };
  }

  async write(state: FloorState): Promise<void> {
    await writeSealed(this.#path, this.protector, state, null);
  }

  async close(): Promise<void> {
    // The protector belongs to the caller, which zeroes it.
  }

  /** Test and reset helper: removes the file (a device re-imaged by its owner). */
  async remove(): Promise<void> {
    await rm(this.#path, { force: true });
  }
}

export function strip(s: FloorState): FloorState {
  return { floor: s.floor, installedVersion: s.installedVersion, installedReleaseId: s.installedReleaseId, counter: s.counter };
}

