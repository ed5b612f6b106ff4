import { join } from 'node:path';
import { FleetkeyError, isFleetkeyError } from '@fleetkey/protocol';
import { openSecret, randomSecret, readSecretFile, sealSecret, writeSecretFile, zero, type KeyProtector } from '@fleetkey/crypto';
import { ensureSecureDir } from '../internal/secure-dir.js';
import { openTpmTools } from '../provisioning/tpm-tools.js';
import { checkPcrs, decodeSealed, encodeSealed } from './sealed-file.js';
import { sealToTpm, unsealFromTpm } from './tpm-seal.js';

/** The sealed machine secret's file in the sealer's directory. */
export const SEALED_SECRET_FILE = 'machine-secret.tpm';
/** PCR 7 (Secure Boot policy and its keys), the default of systemd-cryptenroll too: firmware and kernel updates leave it alone. */
export const DEFAULT_SEAL_PCRS: readonly number[] = [7];
const BLOB_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const blobFile = (name: string): string => `${name}.sealed`;
const blobLabel = (name: string): string => `device/sealed-blob/${name}`;

export interface DeviceSealerOptions {
  /** Directory (0700) holding `machine-secret.tpm` and the sealed blobs. */
  dir: string;
  /** The TPM, as a tpm2-tools TCTI (`device:/dev/tpmrm0`, `swtpm:host=…,port=…`). */
  tcti: string;
  /** PCRs (SHA-256 bank) a new sealed secret is bound to; default [7]. An existing file keeps its own. */
  pcrs?: readonly number[];
  /** Seal a fresh secret when the directory has none (default true); false: refuse with KEY_FILE_NOT_FOUND. */
  create?: boolean;
  /**
   * The 32-byte secret to seal when there is none yet, instead of a random one: a bundle's
   * machine.secret, so the keys already sealed under it (the IDevID key) still open. Copied.
   */
  initialSecret?: Uint8Array;
}

function checkBlobName(name: string): void {
  if (typeof name !== 'string' || !BLOB_NAME.test(name)) throw new TypeError('blob name must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}');
}

/**
 * The device's TPM-sealed storage. A random 32-byte machine secret is sealed to the TPM under a
 * PCR policy (./tpm-seal.ts) and unsealed once at open; everything else the SDK keeps encrypted
 * is an AES-256-GCM envelope under that secret (the crypto package's `machine` protector):
 *
 * - the operational key files: `FileKeystore.open({ dir, protector: sealer.protector() })`;
 * - the offline buffer's data key: `OfflineBuffer.open({ dir, protector: sealer.protector() })`;
 * - any small state that must not be read or rolled back off the device (the update floor):
 *   `writeBlob(name, bytes)` / `readBlob(name)`.
 *
 * So those files open only on this TPM, and only while the selected PCRs hold the values they
 * had at sealing: copied to another machine, or read after a different boot chain extended the
 * PCRs, they are ciphertext with no key.
 *
 * @example
 *   const sealer = await DeviceSealer.open({ dir: '/var/lib/fleetkey/sealed', tcti: 'device:/dev/tpmrm0' });
 *   const keys = await FileKeystore.open({ dir: '/var/lib/fleetkey/keys', protector: sealer.protector() });
 *   await sealer.close(); // the keystore keeps (and later zeroes) its own copy
 */
export class DeviceSealer {
  readonly dir: string;
  readonly pcrs: readonly number[];
  #secret: Buffer | undefined;

  private constructor(dir: string, pcrs: readonly number[], secret: Buffer) {
    this.dir = dir;
    this.pcrs = pcrs;
    this.#secret = secret;
  }

  /**
   * Unseals the machine secret (sealing a fresh one on first use).
   * @throws FleetkeyError TPM_SEAL_POLICY_FAILED | TPM_SEAL_WRONG_TPM | TPM_SEAL_CORRUPT |
   *   TPM_UNAVAILABLE | KEY_FILE_PERMISSIONS | KEY_FILE_NOT_FOUND (create: false)
   */
  static async open(options: DeviceSealerOptions): Promise<DeviceSealer> {
    const pcrs = options.pcrs ?? DEFAULT_SEAL_PCRS;
    checkPcrs(pcrs);
    await ensureSecureDir(options.dir);
    const path = join(options.dir, SEALED_SECRET_FILE);
    let bytes: Buffer | undefined;
    try {
      bytes = await readSecretFile(path);
    } catch (e) {
      if (!(isFleetkeyError(e) && e.code === 'KEY_FILE_NOT_FOUND') || options.create === false) throw e;
    }
    const tools = await openTpmTools(options.tcti);
    try {
      if (bytes !== undefined) {
        const sealed = decodeSealed(bytes);
        const secret = await unsealFromTpm(tools, sealed);
        if (secret.length !== 32) {
          zero(secret);
          throw new FleetkeyError('TPM_SEAL_CORRUPT', { detail: 'the sealed machine secret is not 32 bytes' });
        }
        return new DeviceSealer(options.dir, sealed.pcrs, secret);
      }
      if (options.initialSecret !== undefined && options.initialSecret.length !== 32) throw new RangeError('initialSecret must be 32 bytes');
      const secret = randomSecret(32);
      if (options.initialSecret !== undefined) secret.set(options.initialSecret);
      try {
        const sealed = await sealToTpm(tools, secret, pcrs);
        await writeSecretFile(path, encodeSealed(sealed));
      } catch (e) {
        zero(secret);
        // Another process sealed one first (link(2) is atomic): use theirs.
        if (isFleetkeyError(e) && e.code === 'KEY_FILE_EXISTS') {
          await tools.close();
          return DeviceSealer.open({ ...options, create: false });
        }
        throw e;
      }
      return new DeviceSealer(options.dir, [...pcrs], secret);
    } finally {
      await tools.close();
    }
  }

  #secretOrThrow(): Buffer {
    if (this.#secret === undefined) throw new FleetkeyError('INTERNAL', { detail: 'device sealer is closed' });
    return this.#secret;
  }

  /**
   * The `machine` protector over the unsealed secret. It refers to the sealer's own buffer (no
   * copy): FileKeystore and OfflineBuffer copy what they keep, and {@link close} zeroes this one.
   */
  protector(): KeyProtector {
    return { kind: 'machine', secret: this.#secretOrThrow() };
  }

  /** Writes `data` as `<name>.sealed` (0600, atomic replace), an envelope bound to its name. */
  async writeBlob(name: string, data: Uint8Array): Promise<void> {
    checkBlobName(name);
    const env = await sealSecret(data, this.protector(), blobLabel(name));
    await writeSecretFile(join(this.dir, blobFile(name)), env, { overwrite: true });
  }

  /**
   * The blob written under `name`, or undefined when there is none. The caller zeroes it.
   * @throws FleetkeyError KEY_FILE_CORRUPT (tampered, or another device's) | KEY_FILE_WRONG_PURPOSE (renamed) | KEY_FILE_PERMISSIONS
   */
  async readBlob(name: string): Promise<Buffer | undefined> {
    checkBlobName(name);
    let bytes: Buffer;
    try {
      bytes = await readSecretFile(join(this.dir, blobFile(name)));
    } catch (e) {
      if (isFleetkeyError(e) && e.code === 'KEY_FILE_NOT_FOUND') return undefined;
      throw e;
    }
    return openSecret(bytes, this.protector(), blobLabel(name));
  }

  /** Zeroes the unsealed secret; the sealer refuses every call afterwards. */
  async close(): Promise<void> {
    zero(this.#secret);
    this.#secret = undefined;
  }
}
