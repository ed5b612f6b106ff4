import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readSecretFile, toPem, writeSecretFile, zero } from '@fleetkey/crypto';
import {
  createBundleDir,
  createCsr,
  FileKeystore,
  Pkcs11Keystore,
  writeBundle,
  type Keystore,
} from '@fleetkey/device';
import type { CaAuthority, DerivedKey, Device, DeviceBundle, Enrollment, IssuedCertificate } from '@fleetkey/protocol';
import { DURATION_PATTERN } from '@fleetkey/protocol/base';
import { Command, Option } from 'commander';
import { Client, UsageError, type GlobalOptions } from '../client.js';
import { emit } from '../output.js';
import { createProgress } from '../progress.js';

/** The `fleetkey manufacture` flags, as commander hands them over (numbers as strings). */
export interface ManufactureOptions {
  count: string;
  out: string;
  model?: string;
  enrollment?: string;
  attestation: 'x509' | 'symmetric';
  serialPrefix?: string;
  keystore: 'file' | 'pkcs11';
  module?: string;
  tokenLabel?: string;
  pinFile?: string;
  provisioningUrl?: string;
  curve: 'P-256' | 'P-384';
  concurrency: string;
  /** Birth-certificate lifetime: a duration, or `unlimited` (notAfter 99991231235959Z). */
  idevidValidity?: string;
}

export interface ManifestEntry {
  deviceId: string;
  dir: string;
  model: string | null;
  serials: Record<string, string>;
  idevidFingerprint?: string;
}

/** What stays the same for every device of one run. */
interface Station {
  client: Client;
  out: string;
  model: string | null;
  attestation: 'x509' | 'symmetric';
  enrollmentId: string | null;
  provisioningUrl: string;
  caBundlePem: string;
  curve: 'P-256' | 'P-384';
  idevidValidity: string;
  /** Shared token (PKCS#11) or undefined: one FileKeystore per bundle. */
  token: { keystore: Keystore; module: string; tokenLabel: string; pinFile: string } | undefined;
  serial: (i: number) => string;
}

function dataDirOf(g: GlobalOptions): string {
  return resolve(g.dataDir ?? process.env['FLEETKEY_DATA_DIR'] ?? 'fleetkey-data');
}

/** The device plane a local server announced in <data-dir>/server.json, else the default port. */
function defaultProvisioningUrl(g: GlobalOptions): string {
  const info = join(dataDirOf(g), 'server.json');
  if (existsSync(info)) {
    const parsed = JSON.parse(readFileSync(info, 'utf8')) as { deviceUrl?: unknown };
    if (typeof parsed.deviceUrl === 'string' && parsed.deviceUrl !== '') return parsed.deviceUrl;
  }
  return 'https://127.0.0.1:8443';
}

/** Trust for the device plane: the root and the issuing CAs still in use (active or retiring). */
async function fetchCaBundle(client: Client): Promise<string> {
  const r = await client.request<{ authorities: CaAuthority[] }>('GET', '/v1/ca');
  const pems = r.authorities.filter((a) => a.role === 'root' || (a.role === 'issuing' && (a.status === 'active' || a.status === 'retiring'))).map((a) => a.certificatePem);
  if (!pems.some((p) => p.includes('BEGIN CERTIFICATE'))) throw new Error('the server returned no CA certificates');
  return pems.map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join('');
}

/** One device: register, key, credential, bundle. Secrets are zeroed before returning. */
async function manufactureOne(s: Station, index: number): Promise<ManifestEntry> {
  const deviceId = randomUUID(); // UUIDv4 from the CSPRNG (DESIGN.md §1)
  const serials = { unit: s.serial(index) };
  await s.client.request<Device>('POST', '/v1/devices', { id: deviceId, serials, ...(s.model === null ? {} : { model: s.model }) });
  const dir = await createBundleDir(join(s.out, deviceId));
  const machineSecret = randomBytes(32);
  let deviceKey: Buffer | undefined;
  let own: Keystore | undefined;
  try {
    let idevidKeyLabel: string | null = null;
    let idevidChainPem: string | undefined;
    let idevidFingerprint: string | undefined;
    if (s.attestation === 'x509') {
      const ks = s.token?.keystore ?? (own = await FileKeystore.open({ dir: join(dir, 'keys'), protector: { kind: 'machine', secret: machineSecret } }));
      // One label per device: a factory token may hold the keys of many devices.
      idevidKeyLabel = s.token === undefined ? 'idevid' : `idevid-${deviceId}`;
      const key = await ks.generateKey(idevidKeyLabel, s.curve);
      const csr = toPem(await createCsr(key, { commonName: deviceId }), 'CERTIFICATE REQUEST');
      const issued = await s.client.request<IssuedCertificate>('POST', '/v1/certificates', { deviceId, csr, kind: 'idevid', validity: s.idevidValidity });
      idevidChainPem = issued.chainPem;
      idevidFingerprint = issued.certificate.fingerprintSha256;
    } else {
      const r = await s.client.request<DerivedKey>('POST', `/v1/enrollments/${encodeURIComponent(s.enrollmentId ?? '')}/derived-keys`, { deviceId });
      deviceKey = Buffer.from(r.deviceKey, 'base64');
      if (s.token === undefined) own = await FileKeystore.open({ dir: join(dir, 'keys'), protector: { kind: 'machine', secret: machineSecret } });
    }
    const device: DeviceBundle = {
      version: 1,
      deviceId,
      model: s.model,
      serials,
      attestation: s.attestation,
      enrollmentId: s.enrollmentId,
      provisioningUrl: s.provisioningUrl,
      keystore: s.token === undefined ? { type: 'file', dir: 'keys', protector: 'machine-secret' } : { type: 'pkcs11', module: s.token.module, tokenLabel: s.token.tokenLabel, pinFile: s.token.pinFile },
      idevidKeyLabel,
      tpmTcti: null,
    };
    await writeBundle(dir, {
      device,
      caBundlePem: s.caBundlePem,
      ...(idevidChainPem === undefined ? {} : { idevidChainPem }),
      ...(deviceKey === undefined ? {} : { deviceKey }),
      ...(s.token === undefined ? { machineSecret } : {}),
    });
    return { deviceId, dir: deviceId, model: s.model, serials, ...(idevidFingerprint === undefined ? {} : { idevidFingerprint }) };
  } finally {
    await own?.close();
    zero(machineSecret);
    zero(deviceKey);
  }
}

async function openStation(o: ManufactureOptions, g: GlobalOptions, client: Client): Promise<Station> {
  if (o.attestation === 'symmetric' && o.enrollment === undefined) throw new UsageError('--attestation symmetric needs --enrollment (a symmetric group enrollment)');
  if (o.enrollment !== undefined) {
    const e = await client.request<Enrollment>('GET', `/v1/enrollments/${encodeURIComponent(o.enrollment)}`);
    if (e.attestation !== o.attestation) throw new UsageError(`enrollment ${e.id} is for ${e.attestation} attestation, not ${o.attestation}`);
  }
  const idevidValidity = o.idevidValidity ?? 'unlimited';
  if (idevidValidity !== 'unlimited' && !new RegExp(DURATION_PATTERN).test(idevidValidity)) throw new UsageError('--idevid-validity is a duration (e.g. 3650d) or unlimited');
  let token: Station['token'];
  if (o.keystore === 'pkcs11') {
    if (o.module === undefined || o.tokenLabel === undefined || o.pinFile === undefined) throw new UsageError('--keystore pkcs11 needs --module, --token-label and --pin-file');
    const pinFile = resolve(o.pinFile);
    const pin = await readSecretFile(pinFile);
    try {
      token = { keystore: Pkcs11Keystore.open({ module: o.module, tokenLabel: o.tokenLabel, pin: pin.toString('utf8').trim() }), module: o.module, tokenLabel: o.tokenLabel, pinFile };
    } finally {
      zero(pin);
    }
  }
  // A run-unique default prefix, so two stations never print the same serial.
  const prefix = o.serialPrefix ?? `SN${Date.now().toString(36).toUpperCase()}${randomBytes(2).toString('hex').toUpperCase()}-`;
  const width = Math.max(6, String(Number(o.count)).length);
  return {
    client,
    out: resolve(o.out),
    model: o.model ?? null,
    attestation: o.attestation,
    enrollmentId: o.enrollment ?? null,
    provisioningUrl: (o.provisioningUrl ?? defaultProvisioningUrl(g)).replace(/\/+$/, ''),
    caBundlePem: await fetchCaBundle(client),
    curve: o.curve,
    idevidValidity,
    token,
    serial: (i) => `${prefix}${String(i + 1).padStart(width, '0')}`,
  };
}

/** What one manufacturing run made; `manifest` lists `devices` (also written on a partial run). */
export interface ManufactureResult {
  out: string;
  manifest: string;
  count: number;
  attestation: 'x509' | 'symmetric';
  elapsedMs: number;
  devicesPerSecond: number;
  devices: ManifestEntry[];
}

/**
 * The factory station as a function (the `manufacture` command and `fleetkey simulate
 * --manufacture` share it): registers `count` devices and writes their bundles plus manifest.json.
 * @throws UsageError for bad options | ApiError when the server refuses
 */
export async function manufacture(o: ManufactureOptions, g: GlobalOptions, client: Client = Client.from(g)): Promise<ManufactureResult> {
  const count = Number(o.count);
  const concurrency = Number(o.concurrency);
  if (!Number.isInteger(count) || count < 1 || count > 1_000_000) throw new UsageError('--count must be an integer 1..1000000');
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new UsageError('--concurrency must be an integer 1..64');
  const station = await openStation(o, g, client);
  mkdirSync(station.out, { recursive: true, mode: 0o700 });
  const devices: ManifestEntry[] = new Array(count);
  // A bar redrawn in place with an ETA on a terminal; plain lines for runs of 20 or more otherwise.
  const bar = createProgress({ label: 'manufactured', total: count, unit: 'devices', quietBelow: 20 });
  const started = Date.now();
  let next = 0;
  let done = 0;
  let failure: unknown;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < count) {
      const i = next++;
      try {
        devices[i] = await manufactureOne(station, i);
        bar.update(++done);
      } catch (e) {
        failure ??= e;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  } finally {
    if (done >= 20 || process.stderr.isTTY === true) bar.finish();
    await station.token?.keystore.close();
    // The manifest lists what was made, also when a run stops half-way.
    const made = devices.filter((d): d is ManifestEntry => d !== undefined);
    await writeSecretFile(join(station.out, 'manifest.json'), Buffer.from(`${JSON.stringify({ version: 1, devices: made }, null, 2)}\n`), { overwrite: true });
  }
  if (failure !== undefined) throw failure;
  const elapsedMs = Date.now() - started;
  const devicesPerSecond = Number((count / Math.max(elapsedMs / 1000, 1e-3)).toFixed(2));
  return { out: station.out, manifest: join(station.out, 'manifest.json'), count, attestation: station.attestation, elapsedMs, devicesPerSecond, devices };
}

export function manufactureCommand(): Command {
  return new Command('manufacture')
    .description('mint device ids, generate keys and birth certificates, and write per-device bundles (role manufacturing)')
    .requiredOption('--count <n>', 'number of devices')
    .requiredOption('--out <dir>', 'output directory: one bundle per device plus manifest.json')
    .option('--model <model>', 'device model')
    .option('--enrollment <id>', 'enrollment the devices belong to (required for symmetric: its group derives each device key)')
    .addOption(new Option('--attestation <type>', 'how devices will prove themselves').choices(['x509', 'symmetric']).default('x509'))
    .option('--serial-prefix <prefix>', 'device serials are <prefix><000001...> (default: unique per run)')
    .addOption(new Option('--keystore <type>', 'where device keys live').choices(['file', 'pkcs11']).default('file'))
    .option('--module <path>', 'PKCS#11 module (with --keystore pkcs11)')
    .option('--token-label <label>', 'PKCS#11 token label (with --keystore pkcs11)')
    .option('--pin-file <file>', 'file holding the token PIN, mode 0600 (with --keystore pkcs11)')
    .option('--provisioning-url <url>', 'device plane URL written into bundles (default: deviceUrl of <data-dir>/server.json, else https://127.0.0.1:8443)')
    .addOption(new Option('--curve <curve>', 'IDevID key curve').choices(['P-256', 'P-384']).default('P-256'))
    .option('--idevid-validity <duration|unlimited>', 'birth-certificate lifetime; unlimited = notAfter 99991231235959Z, the IEEE 802.1AR default', 'unlimited')
    .option('--concurrency <n>', 'devices in flight', '4')
    .action(async (o: ManufactureOptions, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await manufacture(o, g);
      emit(g, r, () => `manufactured ${r.count} device(s) into ${r.out} in ${(r.elapsedMs / 1000).toFixed(1)} s (${r.devicesPerSecond} devices/s)\nmanifest: ${r.manifest}`);
    });
}
