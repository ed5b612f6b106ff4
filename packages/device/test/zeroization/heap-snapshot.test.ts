/**
 * Zeroization (issue 13): after a provisioning, the device process holds no copy of the new
 * operational private key, of its symmetric device key, of the machine secret that seals its key
 * files, nor of the AES key derived from it.
 *
 * The device is a child process running the built SDK (`provision()` from dist, as a device runs
 * it) against the real server. After provisioning it collects garbage, writes a V8 heap snapshot
 * and waits; this test then searches
 *   1. the snapshot's string table: every live JS string, for each secret in hex, HEX, base64,
 *      base64url, unpadded base64, a PEM body with its line breaks removed, and as raw bytes in a
 *      one-byte string;
 *   2. the child's whole readable memory (/proc/<pid>/mem over /proc/<pid>/maps): the raw bytes of
 *      each secret, and the symmetric key's base64 text as it is on disk, wherever they are — V8 heap, ArrayBuffer backing stores (which a heap snapshot
 *      does not contain), OpenSSL's and libc's heap, freed memory not yet reused.
 * Limits (docs/SECURITY.md): OpenSSL keeps a live key as a BIGNUM (native-endian limbs), which
 * this big-endian search does not match; memory swapped out, core dumps and copies made by the
 * kernel (socket buffers) are out of scope; the search covers the moment after provisioning only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { hkdfSync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPrivateKey } from '@fleetkey/crypto';
import { writeBundle } from '../../src/provisioning/index.js';
import { startTestServer, type TestServer } from '../../../server/test/support/test-server.js';
import { bundleJson } from '../support/bundle-json.js';
import { searchHeapSnapshot, searchProcessMemory, type Needle } from './memory-search.js';

const CHILD = fileURLToPath(new URL('./provision-child.mjs', import.meta.url));
const DIST = fileURLToPath(new URL('../../dist/index.js', import.meta.url));
const procMem = existsSync('/proc/self/mem');

interface DeviceRun {
  readonly child: ChildProcess;
  readonly snapshot: string;
  readonly needles: Needle[];
  /** Asks the child for its heap snapshot and waits until it is written. */
  takeSnapshot(): Promise<void>;
}

describe.skipIf(!procMem)('zeroization: a device process after provisioning', () => {
  let t: TestServer;
  let root: string;
  let enrollmentId: string;
  let clean: DeviceRun;
  let leaky: DeviceRun;

  /** Manufactures one symmetric device, provisions it in a child process, and returns its secrets as needles. */
  async function runDevice(mode: 'clean' | 'leak'): Promise<DeviceRun> {
    const id = (await t.call('POST', '/v1/devices', { body: { model: 'env-sensor' } })).body.id as string;
    const deviceKey = Buffer.from((await t.call('POST', `/v1/enrollments/${enrollmentId}/derived-keys`, { body: { deviceId: id } })).body.deviceKey, 'base64');
    const machineSecret = randomBytes(32);
    const dir = join(root, id);
    await writeBundle(dir, {
      device: bundleJson({ deviceId: id, attestation: 'symmetric', enrollmentId, provisioningUrl: t.server.deviceUrl, keystore: { type: 'file', dir: 'keys', protector: 'machine-secret' } }),
      caBundlePem: readFileSync(join(t.dataDir, 'ca-bundle.pem'), 'utf8'),
      deviceKey,
      machineSecret,
    });
    const snapshot = join(root, `${mode}.heapsnapshot`);
    const child = spawn(process.execPath, [CHILD, dir, snapshot, mode], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    let out = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const waitFor = (word: string) =>
      new Promise<void>((resolve, reject) => {
        const check = () => out.includes(word) && resolve();
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          check();
        });
        check();
        child.once('exit', (code) => reject(new Error(`device process exited ${code}: ${err}`)));
      });
    await waitFor('provisioned');

    // What the device now keeps, read back from its files with the machine secret.
    const keyFile = readFileSync(join(dir, 'keys', 'operational-1.key'));
    const key = await openPrivateKey(keyFile, { kind: 'machine', secret: machineSecret }, 'device-key/operational-1');
    const salt = Buffer.from(JSON.parse(keyFile.toString('utf8')).kdf.salt, 'base64');
    const needles: Needle[] = [
      { what: 'operational key PKCS#8', bytes: key.export({ type: 'pkcs8', format: 'der' }) },
      { what: 'operational key scalar', bytes: Buffer.from(key.export({ format: 'jwk' }).d!, 'base64url') },
      { what: 'symmetric device key', bytes: deviceKey },
      // The form it has on disk (device-key.b64): decoding it through a JS string would leave this text in the heap.
      { what: 'symmetric device key as base64 text', bytes: Buffer.from(deviceKey.toString('base64')) },
      { what: 'machine secret', bytes: machineSecret },
      { what: 'key-file AES key (HKDF of the machine secret)', bytes: Buffer.from(hkdfSync('sha256', machineSecret, salt, 'fleetkey-envelope/v1 machine', 32)) },
    ];
    return {
      child,
      snapshot,
      needles,
      takeSnapshot: async () => {
        child.stdin!.write('snapshot\n');
        await waitFor('snapshot');
      },
    };
  }

  beforeAll(async () => {
    // The child runs the compiled SDK: `npm test` builds it first (typecheck is tsc -b).
    if (!existsSync(DIST)) throw new Error(`${DIST} missing: run npm run build`);
    root = mkdtempSync(join(tmpdir(), 'fk-zeroize-'));
    t = await startTestServer('sqlite', { config: { deviceHttp: { host: '127.0.0.1', port: 0 } } });
    enrollmentId = (await t.call('POST', '/v1/enrollments', { body: { label: 'sensors', kind: 'group', attestation: 'symmetric' } })).body.enrollment.id;
    clean = await runDevice('clean');
    leaky = await runDevice('leak');
  }, 180_000);

  afterAll(async () => {
    for (const r of [clean, leaky]) {
      if (r === undefined) continue;
      r.child.stdin?.end();
      if (r.child.exitCode === null) await new Promise((res) => r.child.once('exit', res));
    }
    await t?.stop();
    if (root !== undefined) rmSync(root, { recursive: true, force: true });
  });

  it('control: both searches find the copies a careless device process keeps', async () => {
    const key = leaky.needles.filter((n) => n.what === 'symmetric device key');
    expect(searchProcessMemory(leaky.child.pid!, key).length).toBeGreaterThan(0);
    await leaky.takeSnapshot();
    expect(searchHeapSnapshot(leaky.snapshot, key).length).toBeGreaterThan(0);
  }, 120_000);

  it('fail: no readable page of the device process holds the raw bytes of any secret, nor the key file\'s base64 text (heap, buffers, OpenSSL, freed memory), before any forced GC', () => {
    expect([...new Set(searchProcessMemory(clean.child.pid!, clean.needles))]).toEqual([]);
  }, 120_000);

  it('fail: the heap snapshot holds no copy of any secret, in any text form or as raw bytes in a string', async () => {
    await clean.takeSnapshot();
    expect(statSync(clean.snapshot).size).toBeGreaterThan(1 << 20);
    expect(searchHeapSnapshot(clean.snapshot, clean.needles)).toEqual([]);
  }, 60_000);
});
