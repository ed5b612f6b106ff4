import { join } from 'node:path';
import { FleetkeyError, type UpdateReport } from '@fleetkey/protocol';
import { zero, type KeyProtector } from '@fleetkey/crypto';
import { mtlsCredentials, provisionedOf } from '../connection/credentials.js';
import { loadBundle, readMachineSecret } from '../provisioning/bundle.js';
import { openBundleKeystore, type BundleKeystoreOptions } from '../provisioning/bundle-keystore.js';
import { FileFloorStore, type FloorStore } from './floor.js';
import { TpmFloorStore } from './tpm-floor.js';
import { DeviceUpdater, type InstallHook, type UpdateOutcome } from './updater.js';

export interface BundleUpdateOptions extends BundleKeystoreOptions {
  readonly install: InstallHook;
  readonly report?: (r: UpdateReport) => Promise<unknown>;
  /**
   * 'auto' (default): the TPM NV counter when the bundle names a TPM (`tpmTcti`), else the sealed
   * file. 'file' / 'tpm' force one.
   */
  readonly floor?: 'auto' | 'file' | 'tpm';
  readonly nvIndex?: number;
  readonly roots?: { readonly image?: Buffer; readonly director?: Buffer };
  readonly timeoutMs?: number;
}

/** `<bundle>/updates`: trusted metadata of both repositories, downloads and the floor. */
export const UPDATES_DIR = 'updates';

/**
 * One update check for a provisioned bundle: the current operational certificate (renewal may
 * have replaced it since the last check) for mTLS, the floor sealed under the bundle's protector
 * (machine secret or passphrase) and, on a TPM bundle, bound to its NV counter.
 * @throws FleetkeyError CONFIG_INVALID when the bundle cannot do mTLS (symmetric or token-held key)
 */
export async function checkBundleUpdates(dir: string, o: BundleUpdateOptions): Promise<UpdateOutcome> {
  const bundle = await loadBundle(dir);
  const record = provisionedOf(bundle);
  const keystore = await openBundleKeystore(bundle, o);
  let protector: KeyProtector | undefined;
  let floor: FloorStore | undefined;
  let updater: DeviceUpdater | undefined;
  const creds = await mtlsCredentials(bundle, keystore, record).finally(() => keystore.close());
  try {
    if (creds.kind !== 'mtls') throw new FleetkeyError('CONFIG_INVALID', { detail: 'updates need the mTLS identity' });
    const ks = bundle.device.keystore;
    protector =
      ks.type === 'file' && ks.protector === 'passphrase'
        ? { kind: 'passphrase', passphrase: o.passphrase as string | Uint8Array }
        : { kind: 'machine', secret: await readMachineSecret(bundle) };
    const stateDir = join(bundle.dir, UPDATES_DIR);
    const trusted = () => DeviceUpdater.hasTrustedMetadata(stateDir);
    const useTpm = o.floor === 'tpm' || ((o.floor ?? 'auto') === 'auto' && bundle.device.tpmTcti !== null);
    if (useTpm) {
      const tcti = bundle.device.tpmTcti;
      if (tcti === null) throw new FleetkeyError('CONFIG_INVALID', { detail: 'floor "tpm" needs a bundle with tpmTcti' });
      floor = await TpmFloorStore.open({ tcti, dir: stateDir, protector, ...(o.nvIndex === undefined ? {} : { nvIndex: o.nvIndex }), trustedMetadataExists: trusted });
    } else {
      floor = new FileFloorStore(stateDir, protector, trusted);
    }
    updater = new DeviceUpdater({
      deviceId: bundle.device.deviceId,
      deviceUrl: record.gateway.deviceUrl,
      tls: { ca: bundle.caBundlePem, cert: creds.certPem, key: creds.keyPem },
      stateDir,
      floor,
      install: o.install,
      ...(o.report === undefined ? {} : { report: o.report }),
      ...(o.roots === undefined ? {} : { roots: o.roots }),
      ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }),
    });
    return await updater.check();
  } finally {
    updater?.close();
    await floor?.close();
    if (creds.kind === 'mtls') zero(creds.keyPem);
    if (protector?.kind === 'machine') zero(protector.secret as Buffer);
  }
}
