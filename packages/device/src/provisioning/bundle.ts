import { lstat, readdir } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { DeviceBundle, FleetkeyError, ProvisioningResult, UUID_PATTERN, isFleetkeyError } from '@fleetkey/protocol';
import { readSecretFile, secretBuffer, writeSecretFile, zero } from '@fleetkey/crypto';
import { checkSecureDir, ensureSecureDir } from '../internal/secure-dir.js';
import { matches, schemaErrors } from './schema-check.js';

/** File names inside a bundle (packages/protocol/src/bundle.ts). */
export const BUNDLE_FILES = {
  device: 'device.json',
  caBundle: 'ca-bundle.pem',
  idevidChain: 'idevid-chain.pem',
  deviceKey: 'device-key.b64',
  keysDir: 'keys',
  machineSecret: 'machine.secret',
  sealedDir: 'sealed',
  provisioned: 'provisioned.json',
  operationalChain: 'operational-chain.pem',
} as const;

/**
 * What the SDK records after provisioning: the server's result (nothing secret in it) plus the
 * keystore label of the operational key it certifies, so the connection code finds that key.
 */
export const ProvisionedRecord = Type.Object(
  { ...ProvisioningResult.properties, operationalKeyLabel: Type.String(), provisionedAt: Type.String({ format: 'date-time' }) },
  { additionalProperties: false },
);
export type ProvisionedRecord = Static<typeof ProvisionedRecord>;

export interface LoadedBundle {
  /** Absolute bundle directory. */
  readonly dir: string;
  readonly device: DeviceBundle;
  readonly caBundlePem: string;
  /** x509 only. */
  readonly idevidChainPem: string | null;
  /** Present once the device has been provisioned. */
  readonly provisioned: ProvisionedRecord | null;
}

const uuid = new RegExp(UUID_PATTERN);
const MACHINE_SECRET_BYTES = 32;

function invalid(detail: string): FleetkeyError {
  return new FleetkeyError('CONFIG_INVALID', { detail: `device bundle: ${detail}` });
}

async function readOptional(path: string): Promise<Buffer | null> {
  try {
    return await readSecretFile(path);
  } catch (e) {
    if (isFleetkeyError(e) && e.code === 'KEY_FILE_NOT_FOUND') return null;
    throw e;
  }
}

/**
 * Every file is 0600 and the directory 0700 (bundle.ts). Checked for every entry, not only the
 * ones read now: a world-readable keys/ or device-key.b64 next to a tidy device.json is the leak.
 * @throws FleetkeyError KEY_FILE_PERMISSIONS
 */
async function checkBundlePermissions(dir: string): Promise<void> {
  await checkSecureDir(dir);
  for (const name of await readdir(dir)) {
    const path = join(dir, name);
    const st = await lstat(path);
    if (st.isSymbolicLink()) throw new FleetkeyError('KEY_FILE_PERMISSIONS', { detail: `${path} is a symlink` });
    if (st.isDirectory()) {
      await checkSecureDir(path);
      continue;
    }
    if ((st.mode & 0o077) !== 0) {
      throw new FleetkeyError('KEY_FILE_PERMISSIONS', { detail: `${path} has mode ${(st.mode & 0o777).toString(8)}; expected 600` });
    }
  }
}

/** Consistency the schema cannot express: per-attestation requirements and URL/id forms. */
function checkDevice(d: DeviceBundle): void {
  if (!uuid.test(d.deviceId)) throw invalid('deviceId is not a lower-case UUID');
  let url: URL;
  try {
    url = new URL(d.provisioningUrl);
  } catch {
    throw invalid('provisioningUrl is not a URL');
  }
  if (url.protocol !== 'https:') throw invalid('provisioningUrl must be https');
  if (d.attestation === 'x509' && d.idevidKeyLabel === null) throw invalid('x509 attestation needs idevidKeyLabel');
  if (d.attestation === 'tpm' && d.tpmTcti === null) throw invalid('tpm attestation needs tpmTcti');
  if (d.keystore.type === 'file' && d.keystore.protector === 'tpm-sealed' && d.tpmTcti === null) throw invalid('a tpm-sealed keystore needs tpmTcti');
}

/**
 * Reads and checks a device bundle: permissions first, then device.json against the TypeBox
 * `DeviceBundle` schema, then the files its attestation type needs. Secrets (machine.secret,
 * device-key.b64, the PIN) are not read here; the code that uses one reads it and zeroes it.
 * @throws FleetkeyError KEY_FILE_PERMISSIONS | CONFIG_INVALID | KEY_FILE_NOT_FOUND
 */
export async function loadBundle(dir: string): Promise<LoadedBundle> {
  const abs = resolve(dir);
  await checkBundlePermissions(abs);
  const raw = await readSecretFile(join(abs, BUNDLE_FILES.device));
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    throw invalid(`${BUNDLE_FILES.device} is not JSON`);
  }
  if (!matches(DeviceBundle, parsed)) throw invalid(`${BUNDLE_FILES.device}: ${schemaErrors(DeviceBundle, parsed).join('; ')}`);
  checkDevice(parsed);

  const caBundlePem = (await readSecretFile(join(abs, BUNDLE_FILES.caBundle))).toString('utf8');
  if (!caBundlePem.includes('-----BEGIN CERTIFICATE-----')) throw invalid(`${BUNDLE_FILES.caBundle} holds no certificate`);
  const chain = await readOptional(join(abs, BUNDLE_FILES.idevidChain));
  if (parsed.attestation === 'x509' && chain === null) throw invalid(`x509 attestation needs ${BUNDLE_FILES.idevidChain}`);
  if (parsed.attestation === 'symmetric') {
    // Read to check it is there and readable; its bytes are the key's text: wiped at once (test/zeroization).
    const present = await readOptional(join(abs, BUNDLE_FILES.deviceKey));
    zero(present ?? undefined);
    if (present === null) throw invalid(`symmetric attestation needs ${BUNDLE_FILES.deviceKey}`);
  }

  const provRaw = await readOptional(join(abs, BUNDLE_FILES.provisioned));
  let provisioned: ProvisionedRecord | null = null;
  if (provRaw !== null) {
    const p: unknown = JSON.parse(provRaw.toString('utf8'));
    if (!matches(ProvisionedRecord, p)) throw invalid(`${BUNDLE_FILES.provisioned}: ${schemaErrors(ProvisionedRecord, p).join('; ')}`);
    provisioned = p;
  }
  return { dir: abs, device: parsed, caBundlePem, idevidChainPem: chain?.toString('utf8') ?? null, provisioned };
}

/** The value of one base64 character (RFC 4648 §4 alphabet), or -1. */
function b64Value(c: number): number {
  if (c >= 0x41 && c <= 0x5a) return c - 0x41;
  if (c >= 0x61 && c <= 0x7a) return c - 0x61 + 26;
  if (c >= 0x30 && c <= 0x39) return c - 0x30 + 52;
  if (c === 0x2b) return 62;
  if (c === 0x2f) return 63;
  return -1;
}

/**
 * Decodes base64 bytes into an off-heap buffer without ever making a JS string of them: a string
 * cannot be wiped, and the key's base64 text would stay in the heap until the GC reuses it
 * (found by test/zeroization). Accepts trailing whitespace and RFC 4648 padding only.
 */
export function decodeBase64Secret(text: Uint8Array): Buffer | undefined {
  let end = text.length;
  while (end > 0 && (text[end - 1] === 0x0a || text[end - 1] === 0x0d || text[end - 1] === 0x20)) end--;
  let pad = 0;
  while (pad < 2 && end > 0 && text[end - 1] === 0x3d) {
    end--;
    pad++;
  }
  if (end === 0 || (end + pad) % 4 !== 0) return undefined;
  const out = secretBuffer(Math.floor((end * 6) / 8));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < end; i++) {
    const v = b64Value(text[i]!);
    if (v < 0) {
      zero(out);
      return undefined;
    }
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  acc = 0;
  return out;
}

/** Reads the per-device symmetric key (base64 file). The caller zeroes the buffer. */
export async function readDeviceKey(bundle: LoadedBundle): Promise<Buffer> {
  const b64 = await readSecretFile(join(bundle.dir, BUNDLE_FILES.deviceKey));
  try {
    const key = decodeBase64Secret(b64);
    if (key === undefined) throw invalid(`${BUNDLE_FILES.deviceKey} is not base64`);
    if (key.length < 16) {
      zero(key);
      throw invalid(`${BUNDLE_FILES.deviceKey} is too short`);
    }
    return key;
  } finally {
    zero(b64);
  }
}

/** Reads machine.secret (32 bytes). The caller zeroes the buffer. */
export async function readMachineSecret(bundle: LoadedBundle): Promise<Buffer> {
  const s = await readSecretFile(join(bundle.dir, BUNDLE_FILES.machineSecret));
  if (s.length !== MACHINE_SECRET_BYTES) {
    zero(s);
    throw invalid(`${BUNDLE_FILES.machineSecret} must be ${MACHINE_SECRET_BYTES} bytes`);
  }
  return s;
}

/** The PIN file of a PKCS#11 bundle keystore: relative paths are relative to the bundle. */
export function pinFilePath(bundle: LoadedBundle, pinFile: string): string {
  return isAbsolute(pinFile) ? pinFile : join(bundle.dir, pinFile);
}

export interface BundleContents {
  device: DeviceBundle;
  caBundlePem: string;
  idevidChainPem?: string;
  /** symmetric: the per-device derived key (never the group key). Not zeroed here. */
  deviceKey?: Uint8Array;
  /** The 32-byte secret sealing keys/ (file keystore). Not zeroed here. */
  machineSecret?: Uint8Array;
}

/** Creates the bundle directory 0700 (refusing a looser existing one). */
export async function createBundleDir(dir: string): Promise<string> {
  const abs = resolve(dir);
  await ensureSecureDir(abs);
  return abs;
}

/**
 * Writes a bundle's files, each 0600 and atomically. device.json goes last: a bundle whose
 * writing was interrupted has no device.json and is refused by {@link loadBundle} rather than
 * half-used. Keys are written by the keystore (keys/ or the token) before this call.
 * @throws FleetkeyError CONFIG_INVALID when `device` does not match the schema | KEY_FILE_EXISTS
 */
export async function writeBundle(dir: string, contents: BundleContents): Promise<void> {
  if (!matches(DeviceBundle, contents.device)) throw invalid(schemaErrors(DeviceBundle, contents.device).join('; '));
  checkDevice(contents.device);
  const abs = await createBundleDir(dir);
  const put = (name: string, data: Uint8Array): Promise<void> => writeSecretFile(join(abs, name), data, { overwrite: true });
  if (contents.machineSecret !== undefined) {
    if (contents.machineSecret.length !== MACHINE_SECRET_BYTES) throw invalid(`machine secret must be ${MACHINE_SECRET_BYTES} bytes`);
    await put(BUNDLE_FILES.machineSecret, contents.machineSecret);
  }
  if (contents.deviceKey !== undefined) {
    const b64 = Buffer.from(`${Buffer.from(contents.deviceKey).toString('base64')}\n`);
    try {
      await put(BUNDLE_FILES.deviceKey, b64);
    } finally {
      zero(b64);
    }
  }
  if (contents.idevidChainPem !== undefined) await put(BUNDLE_FILES.idevidChain, Buffer.from(contents.idevidChainPem));
  await put(BUNDLE_FILES.caBundle, Buffer.from(contents.caBundlePem));
  await put(BUNDLE_FILES.device, Buffer.from(`${JSON.stringify(contents.device, null, 2)}\n`));
}

/** Records a successful provisioning: operational-chain.pem, then provisioned.json (0600). */
export async function writeProvisioned(bundle: LoadedBundle, record: ProvisionedRecord): Promise<void> {
  await writeSecretFile(join(bundle.dir, BUNDLE_FILES.operationalChain), Buffer.from(record.chainPem), { overwrite: true });
  await writeSecretFile(join(bundle.dir, BUNDLE_FILES.provisioned), Buffer.from(`${JSON.stringify(record, null, 2)}\n`), { overwrite: true });
}
