import { join } from 'node:path';
import { zero, type KeyProtector } from '@fleetkey/crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import { OfflineBuffer } from '../offline/offline-buffer.js';
import { openBundleKeystore } from '../provisioning/bundle-keystore.js';
import { loadBundle, readMachineSecret, type LoadedBundle } from '../provisioning/bundle.js';
import { chooseAuth, provisionedOf } from './credentials.js';
import { DeviceConnection } from './device-connection.js';
import type { ConnectOptions } from './types.js';

/** The offline buffer's directory inside a bundle. */
export const OFFLINE_DIR = 'offline';

/**
 * Connects a provisioned device to its gateway.
 *
 * Reads the bundle (permissions checked), opens its keystore, picks the authentication (mTLS with
 * the operational key; a SAS token over `mqtt/<deviceId>` for symmetric-key bundles), opens the
 * encrypted offline buffer in `<bundle>/offline/` and starts connecting. By default resolves at
 * the first CONNACK; network failures are retried with full-jitter backoff meanwhile.
 *
 * @throws FleetkeyError CONFIG_INVALID (not provisioned, no gateway URL, a token-held key without a
 *   symmetric key) | KEY_FILE_PERMISSIONS | ConnectionStoppedError when the gateway refuses the
 *   device before the first CONNACK (revoked, bad credentials)
 * @example
 *   const c = await connect('/var/lib/fleetkey/bundle');
 *   c.onCommand((cmd) => ({ ok: true }));
 *   await c.sendDiagnostics({ partsPerHour: 42 });
 *   c.on('stopped', ({ reason }) => console.error('cut off:', reason));
 */
export async function connect(bundleDir: string, options: ConnectOptions = {}): Promise<DeviceConnection> {
  const bundle = await loadBundle(bundleDir);
  const record = provisionedOf(bundle);
  const single = options.mqttUrl ?? record.gateway.mqttUrl;
  const mqttUrls = options.mqttUrls !== undefined && options.mqttUrls.length > 0 ? [...options.mqttUrls] : single === null ? [] : [single];
  if (mqttUrls.length === 0) throw new FleetkeyError('CONFIG_INVALID', { detail: 'the server gave no MQTT gateway URL; pass mqttUrl or mqttUrls' });
  for (const mqttUrl of mqttUrls) {
    let u: URL;
    try {
      u = new URL(mqttUrl);
    } catch {
      throw new FleetkeyError('CONFIG_INVALID', { detail: 'a gateway URL is not a URL' });
    }
    // Never plaintext: the device's credentials and data cross this link (on every endpoint).
    if (u.protocol !== 'mqtts:') throw new FleetkeyError('CONFIG_INVALID', { detail: `gateway URL must be mqtts: ${u.protocol}` });
  }
  const keystore = await openBundleKeystore(bundle, options);
  let buffer: OfflineBuffer | undefined;
  try {
    const auth = await chooseAuth(bundle, keystore, options.auth ?? 'auto');
    buffer = await openOffline(bundle, options);
    const conn = new DeviceConnection({ bundle, record, keystore, buffer, auth, mqttUrls, options });
    conn.start();
    if (options.waitForConnection !== false) {
      try {
        await conn.ready();
      } catch (e) {
        await conn.close();
        throw e;
      }
    }
    return conn;
  } catch (e) {
    await buffer?.close().catch(() => undefined);
    await keystore.close().catch(() => undefined);
    throw e;
  }
}

async function openOffline(bundle: LoadedBundle, options: ConnectOptions): Promise<OfflineBuffer | undefined> {
  if (options.offline === false) return undefined;
  const dir = join(bundle.dir, OFFLINE_DIR);
  const common = { dir, ...(options.offline?.maxBytes === undefined ? {} : { maxBytes: options.offline.maxBytes }) };
  if (options.offline?.key !== undefined) return OfflineBuffer.open({ ...common, key: options.offline.key });
  const ks = bundle.device.keystore;
  let protector: KeyProtector | undefined;
  if (ks.type === 'file' && ks.protector === 'machine-secret') protector = { kind: 'machine', secret: await readMachineSecret(bundle) };
  else if (options.passphrase !== undefined) protector = { kind: 'passphrase', passphrase: options.passphrase };
  // A token-keyed bundle has no secret on disk to seal the buffer with: the caller gives `offline.key`.
  if (protector === undefined) return undefined;
  try {
    return await OfflineBuffer.open({ ...common, protector });
  } finally {
    if (protector.kind === 'machine') zero(protector.secret);
  }
}
