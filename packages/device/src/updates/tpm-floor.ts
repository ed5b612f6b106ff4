import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { isFleetkeyError } from '@fleetkey/protocol';
import type { KeyProtector } from '@fleetkey/crypto';
import { openTpmTools, type TpmTools } from '../provisioning/tpm-tools.js';
import { EMPTY_FLOOR, FLOOR_FILE, readSealed, strip, writeSealed, type FloorState, type FloorStore } from './floor.js';
import { refuse } from './refusal.js';

/** Default NV index of the floor counter (owner range, TCG handle registry §2.2: 0x01xxxxxx). */
export const DEFAULT_FLOOR_NV_INDEX = 0x01500016;
const NEXT_FILE = 'floor.next';

/**
 * The anti-rollback floor on a TPM: a monotonic NV counter (TPM 2.0 Part 1 §37.2.2,
 * TPM_NT_COUNTER: it can only go up, and only by one per TPM2_NV_Increment) binds the sealed
 * floor file to the one current version of it. Every write seals the state with the counter
 * value it will have, then increments the counter; a read accepts a file only when its value
 * equals the counter. An older file put back (rollback of the floor), a deleted file or a
 * removed counter therefore fails closed with UPDATE_FLOOR_INVALID.
 *
 * Crash safety: the new state goes to `floor.next` first (value N+1), then the increment, then
 * the rename; a reader that finds the counter at N+1 and the file at N adopts `floor.next`.
 * Driven with tpm2-tools like provisioning (tpm-tools.ts), on swtpm in tests.
 */
export class TpmFloorStore implements FloorStore {
  readonly kind = 'tpm' as const;
  readonly #file: string;
  readonly #next: string;
  readonly #index: string;

  private constructor(
    private readonly tools: TpmTools,
    dir: string,
    private readonly protector: KeyProtector,
    index: number,
    private readonly trustedMetadataExists: () => Promise<boolean>,
  ) {
    this.#file = join(dir, FLOOR_FILE);
    this.#next = join(dir, NEXT_FILE);
    this.#index = `0x${index.toString(16).padStart(8, '0')}`;
  }

  static async open(o: { tcti: string; dir: string; protector: KeyProtector; nvIndex?: number; trustedMetadataExists: () => Promise<boolean> }): Promise<TpmFloorStore> {
    return new TpmFloorStore(await openTpmTools(o.tcti), o.dir, o.protector, o.nvIndex ?? DEFAULT_FLOOR_NV_INDEX, o.trustedMetadataExists);
  }

  /** The counter: a decimal string, 'undefined' (no such index) or 'uninitialized' (never incremented). */
  async counter(): Promise<string | 'undefined' | 'uninitialized'> {
    const out = this.tools.path('floor-nv.bin');
    try {
      await this.tools.run('tpm2_nvread', ['-C', 'o', '-s', '8', this.#index, '-o', out]);
    } catch (e) {
      const detail = isFleetkeyError(e) ? (e.detail ?? '') : String(e);
      // TPM_RC_HANDLE (0x18B): no such index; TPM_RC_NV_UNINITIALIZED (0x14A): never incremented.
      if (/0x18b/i.test(detail)) return 'undefined';
      if (/0x14a/i.test(detail)) return 'uninitialized';
      throw refuse('UPDATE_FLOOR_INVALID', `cannot read the floor counter: ${detail}`, e);
    }
    const b = await readFile(out);
    if (b.length !== 8) throw refuse('UPDATE_FLOOR_INVALID', `floor counter of ${b.length} bytes`);
    return b.readBigUInt64BE(0).toString();
  }

  async read(): Promise<{ state: FloorState; existed: boolean }> {
    const nv = await this.counter();
    const file = await readSealed(this.#file, this.protector);
    if (nv === 'undefined' || nv === 'uninitialized') {
      if (file !== null) throw refuse('UPDATE_FLOOR_INVALID', `floor file present but its NV counter ${this.#index} is ${nv}`);
      if (await this.trustedMetadataExists()) throw refuse('UPDATE_FLOOR_INVALID', 'no floor while the device already trusts update metadata');
      return { state: EMPTY_FLOOR, existed: false };
    }
    if (file !== null && file.nv === nv) return { state: strip(file), existed: true };
    // An interrupted write: the counter moved, the rename did not happen yet.
    const next = await readSealed(this.#next, this.protector).catch(() => null);
    if (next !== null && next.nv === nv) {
      await rename(this.#next, this.#file);
      return { state: strip(next), existed: true };
    }
    throw refuse('UPDATE_FLOOR_INVALID', file === null ? `floor file missing; NV counter at ${nv}` : `floor file sealed at counter ${String(file.nv)}, NV counter at ${nv} (an older floor was put back)`);
  }

  async write(state: FloorState): Promise<void> {
    let nv = await this.counter();
    if (nv === 'undefined') {
      // TPM_NT_COUNTER, 8 bytes; owner-authorised; no_da so a wrong auth elsewhere cannot lock it out.
      await this.tools.run('tpm2_nvdefine', [this.#index, '-C', 'o', '-s', '8', '-a', 'nt=counter|ownerwrite|ownerread|authread|authwrite|no_da']);
      nv = 'uninitialized';
    }
    if (nv === 'uninitialized') {
      // A counter starts at the highest value any counter of this TPM ever had (Part 1 §37.2.2):
      // increment once to learn it.
      await this.tools.run('tpm2_nvincrement', ['-C', 'o', this.#index]);
      nv = await this.counter();
      if (nv === 'undefined' || nv === 'uninitialized') throw refuse('UPDATE_FLOOR_INVALID', 'floor counter did not initialise');
    }
    const target = (BigInt(nv) + 1n).toString();
    await writeSealed(this.#next, this.protector, state, target);
    await this.tools.run('tpm2_nvincrement', ['-C', 'o', this.#index]);
    await rename(this.#next, this.#file);
  }

  async close(): Promise<void> {
    // floor.next is kept: after a crash between increment and rename it is the current state.
    await this.tools.close();
  }
}
