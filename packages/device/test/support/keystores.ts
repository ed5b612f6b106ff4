/**
 * The keystores the abstract suite runs against, each a real backend: a directory of sealed
 * files, a SoftHSM2 token, and a TPM 2.0 (swtpm) behind tpm2-pkcs11. MQTT.js runs one store
 * suite against every store implementation in the same way.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initPkcs11Token, type KeyProtector, type OpenTokenOptions } from '@fleetkey/crypto';
import { FileKeystore, Pkcs11Keystore, type KeyCurve, type Keystore } from '../../src/keystore/index.js';
import { createSoftHsm, softHsmAvailable, type SoftHsm } from '../../../crypto/test/support/softhsm.js';
import { startSwtpm, swtpmMissing, type Swtpm } from '../../../crypto/test/support/swtpm.js';

export const TPM2_PKCS11_MODULE = '/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so';

export interface KeystoreBackend {
  readonly name: string;
  /** Curves this backend generates reliably (tpm2-pkcs11 without a resource manager: P-256). */
  readonly curves: readonly KeyCurve[];
  /** Opens a keystore over the same storage (a second open sees the keys of the first). */
  open(): Promise<Keystore>;
  /** For token backends: how to open a second, independent session to inspect the token. */
  readonly token?: OpenTokenOptions;
  /**
   * Key objects the token can hold loaded at once. swtpm has no resource manager (a device has
   * the kernel's /dev/tpmrm0) and tpm2-pkcs11 keeps every key it used loaded until logout, so
   * there the suite uses at most one key per open keystore.
   */
  readonly maxLoadedKeys: number;
  cleanup(): Promise<void>;
}

export interface BackendFactory {
  readonly name: string;
  /** Why this backend cannot run here, or null. */
  missing(): Promise<string | null>;
  create(): Promise<KeystoreBackend>;
}

export const fileBackend: BackendFactory = {
  name: 'FileKeystore',
  missing: async () => null,
  async create() {
    const root = await mkdtemp(join(tmpdir(), 'fk-ks-file-'));
    const dir = join(root, 'keys');
    const secret = randomBytes(32);
    const protector: KeyProtector = { kind: 'machine', secret };
    return {
      name: 'FileKeystore',
      curves: ['P-256', 'P-384'],
      maxLoadedKeys: Infinity,
      open: () => FileKeystore.open({ dir, protector }),
      cleanup: () => rm(root, { recursive: true, force: true }),
    };
  },
};

export const softHsmBackend: BackendFactory = {
  name: 'Pkcs11Keystore (SoftHSM2)',
  missing: async () => (softHsmAvailable ? null : 'SoftHSM2 (softhsm2 package) not installed'),
  async create() {
    const hsm: SoftHsm = await createSoftHsm();
    const t = await hsm.addToken('fk-device');
    const token = { module: hsm.module, tokenLabel: t.label, pin: t.pin };
    return {
      name: 'Pkcs11Keystore (SoftHSM2)',
      curves: ['P-256', 'P-384'],
      maxLoadedKeys: Infinity,
      token,
      open: async () => Pkcs11Keystore.open(token),
      cleanup: () => hsm.cleanup(),
    };
  },
};

export const tpmBackend: BackendFactory = {
  name: 'Pkcs11Keystore (TPM 2.0 via tpm2-pkcs11 on swtpm)',
  async missing() {
    if (!existsSync(TPM2_PKCS11_MODULE)) return `tpm2-pkcs11 module not installed (${TPM2_PKCS11_MODULE}; Debian libtpm2-pkcs11-1)`;
    return swtpmMissing();
  },
  async create() {
    const tpm: Swtpm = await startSwtpm();
    const store = await mkdtemp(join(tmpdir(), 'fk-tpm2-pkcs11-'));
    // Read by tpm2-pkcs11 at C_Initialize: set before the module is first loaded.
    process.env['TPM2_PKCS11_TCTI'] = `swtpm:host=127.0.0.1,port=${tpm.port}`;
    process.env['TPM2_PKCS11_STORE'] = store;
    process.env['TPM2_PKCS11_LOG_LEVEL'] = '0';
    const pin = `user-${randomBytes(4).toString('hex')}`;
    try {
      initPkcs11Token({ module: TPM2_PKCS11_MODULE, label: 'fk-device', soPin: `so-${randomBytes(4).toString('hex')}`, pin });
    } catch (e) {
      await tpm.stop();
      await rm(store, { recursive: true, force: true });
      throw e;
    }
    const token = { module: TPM2_PKCS11_MODULE, tokenLabel: 'fk-device', pin };
    return {
      name: 'Pkcs11Keystore (TPM)',
      curves: ['P-256'],
      maxLoadedKeys: 1,
      token,
      async open() {
        // What the kernel's resource manager (/dev/tpmrm0) does when a client's connection
        // ends: flush the transient objects it left loaded. swtpm has none, and tpm2-pkcs11
        // neither flushes a loaded key it destroys nor everything it loaded at C_Finalize, so
        // without this the TPM's ~3 object slots fill up and C_Login fails. Only called while
        // no keystore of ours is open.
        await tpm.tpm2('tpm2_flushcontext', ['-t']);
        return Pkcs11Keystore.open(token);
      },
      async cleanup() {
        await tpm.stop();
        await rm(store, { recursive: true, force: true });
      },
    };
  },
};

export const ALL_BACKENDS: readonly BackendFactory[] = [fileBackend, softHsmBackend, tpmBackend];
