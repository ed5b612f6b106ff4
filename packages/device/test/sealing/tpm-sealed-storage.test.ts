/**
 * TPM-sealed storage on a real TPM (swtpm, tpm2-tools): the operational key file, the offline
 * buffer's key and a sealed blob (the update floor's kind of state) open only on the TPM that
 * sealed them, and only while the selected PCRs hold the values they had at sealing.
 *
 * Order matters: the PCR-extension test runs last on TPM A (PCRs stay extended until swtpm restarts).
 */
import { randomBytes } from 'node:crypto';
import { access, cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileKeystore } from '../../src/keystore/index.js';
import { OfflineBuffer } from '../../src/offline/index.js';
import { DeviceSealer, SEALED_SECRET_FILE } from '../../src/sealing/index.js';
import { loadBundle, openBundleKeystore, openBundleSealer, writeBundle } from '../../src/provisioning/index.js';
import { bundleJson } from '../support/bundle-json.js';
import { startSwtpm, swtpmMissing, type Swtpm } from '../../../crypto/test/support/swtpm.js';

const missing = await swtpmMissing();
const code = (c: string) => expect.objectContaining({ code: c });
const tcti = (t: Swtpm): string => `swtpm:host=127.0.0.1,port=${t.port}`;

describe.skipIf(missing !== null)(`TPM-sealed storage on swtpm${missing === null ? '' : ` (skipped: ${missing})`}`, () => {
  let a: Swtpm;
  let b: Swtpm;
  let root: string;
  let device: string; // what a device keeps on its disk: sealed/, keys/, buffer/
  let spki: Buffer;
  let secretSeen: Buffer;
  const floor = Buffer.from(JSON.stringify({ release: '2.4.1', counter: 17 }));

  const layout = (base: string) => ({ sealed: join(base, 'sealed'), keys: join(base, 'keys'), buffer: join(base, 'buffer') });

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'fk-sealing-'));
    a = await startSwtpm();
    b = await startSwtpm();
    device = join(root, 'device');
    const d = layout(device);
    const sealer = await DeviceSealer.open({ dir: d.sealed, tcti: tcti(a), pcrs: [0, 7] });
    secretSeen = Buffer.from((sealer.protector() as { secret: Uint8Array }).secret);
    const keys = await FileKeystore.open({ dir: d.keys, protector: sealer.protector() });
    spki = (await keys.generateKey('operational-1', 'P-256')).spkiDer;
    await keys.close();
    const buf = await OfflineBuffer.open({ dir: d.buffer, protector: sealer.protector(), sync: false });
    await buf.append('telemetry', Buffer.from('while offline'));
    await buf.close();
    await sealer.writeBlob('update-floor', floor);
    await sealer.close();
  }, 60_000);

  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('the same TPM in the same boot state opens the key file, the offline buffer and the sealed blob', async () => {
    const d = layout(device);
    const sealer = await DeviceSealer.open({ dir: d.sealed, tcti: tcti(a), create: false });
    expect(sealer.pcrs).toEqual([0, 7]);
    const keys = await FileKeystore.open({ dir: d.keys, protector: sealer.protector() });
    expect((await keys.getKey('operational-1'))?.spkiDer.equals(spki)).toBe(true);
    await keys.close();
    const buf = await OfflineBuffer.open({ dir: d.buffer, protector: sealer.protector(), sync: false });
    const seen: string[] = [];
    await buf.drain((m) => {
      seen.push(m.payload.toString());
      return true;
    });
    expect(seen).toEqual(['while offline']);
    await buf.close();
    expect((await sealer.readBlob('update-floor'))?.equals(floor)).toBe(true);
    expect(await sealer.readBlob('absent')).toBeUndefined();
    await sealer.close();
    expect(() => sealer.protector()).toThrow(); // closed: the secret is gone
  }, 30_000);

  it('extending a PCR outside the selection (16, the debug PCR) changes nothing', async () => {
    await a.tpm2('tpm2_pcrextend', [`16:sha256=${'11'.repeat(32)}`]);
    const sealer = await DeviceSealer.open({ dir: layout(device).sealed, tcti: tcti(a), create: false });
    await sealer.close();
  }, 30_000);

  it('fail: the whole directory copied to another TPM (same model, same manufacturer tooling) is refused with TPM_SEAL_WRONG_TPM', async () => {
    const copy = join(root, 'copied-to-b');
    await cp(device, copy, { recursive: true });
    await expect(DeviceSealer.open({ dir: layout(copy).sealed, tcti: tcti(b), create: false })).rejects.toEqual(code('TPM_SEAL_WRONG_TPM'));
  }, 30_000);

  it('fail: the files alone are useless: no file holds the secret, and any other secret fails every envelope', async () => {
    for (const dir of Object.values(layout(device))) {
      for (const f of await readdir(dir)) {
        const bytes = await readFile(join(dir, f));
        expect(bytes.includes(secretSeen)).toBe(false);
        expect(bytes.includes(Buffer.from(secretSeen.toString('base64')))).toBe(false);
        expect(bytes.includes(Buffer.from(secretSeen.toString('hex')))).toBe(false);
      }
    }
    const other = { kind: 'machine' as const, secret: randomBytes(32) };
    const keys = await FileKeystore.open({ dir: layout(device).keys, protector: other });
    await expect(keys.getKey('operational-1')).rejects.toEqual(code('KEY_FILE_CORRUPT'));
    await keys.close();
    await expect(OfflineBuffer.open({ dir: layout(device).buffer, protector: other, sync: false })).rejects.toEqual(code('KEY_FILE_CORRUPT'));
  }, 30_000);

  it('fail: an edited sealed file is refused before or by the TPM: malformed, a PCR list rewritten, the public area altered; a blob renamed', async () => {
    const d = layout(join(root, 'edited'));
    await cp(device, join(root, 'edited'), { recursive: true });
    const path = join(d.sealed, SEALED_SECRET_FILE);
    const original = await readFile(path, 'utf8');
    const doc = JSON.parse(original) as Record<string, unknown>;

    await writeFile(path, '{"format":"fleetkey-tpm-sealed"', { mode: 0o600 });
    await expect(DeviceSealer.open({ dir: d.sealed, tcti: tcti(a), create: false })).rejects.toEqual(code('TPM_SEAL_CORRUPT'));

    // A selection over PCRs still at their reset value would be easy to satisfy: the object's
    // authPolicy is over [0, 7] and the session's digest over [0] does not match it.
    await writeFile(path, JSON.stringify({ ...doc, pcrs: [0] }), { mode: 0o600 });
    await expect(DeviceSealer.open({ dir: d.sealed, tcti: tcti(a), create: false })).rejects.toEqual(code('TPM_SEAL_POLICY_FAILED'));

    // The object's name (a hash of its public area) is bound into TPM2B_PRIVATE's integrity HMAC.
    const pub = Buffer.from(doc['public'] as string, 'base64');
    pub[pub.length - 1]! ^= 0x01;
    await writeFile(path, JSON.stringify({ ...doc, public: pub.toString('base64') }), { mode: 0o600 });
    await expect(DeviceSealer.open({ dir: d.sealed, tcti: tcti(a), create: false })).rejects.toEqual(code('TPM_SEAL_WRONG_TPM'));

    await writeFile(path, original, { mode: 0o600 });
    const sealer = await DeviceSealer.open({ dir: d.sealed, tcti: tcti(a), create: false });
    await cp(join(d.sealed, 'update-floor.sealed'), join(d.sealed, 'other-state.sealed'));
    await expect(sealer.readBlob('other-state')).rejects.toEqual(code('KEY_FILE_WRONG_PURPOSE'));
    await sealer.close();
  }, 60_000);

  it('a bundle with keystore protector tpm-sealed: the first open seals the manufactured machine.secret and deletes it; the IDevID key made under it still opens', async () => {
    const dir = join(root, 'bundle');
    const machineSecret = randomBytes(32);
    // The manufacturing station: an IDevID key under the plain machine secret.
    const station = await FileKeystore.open({ dir: join(dir, 'keys'), protector: { kind: 'machine', secret: machineSecret } });
    const idevid = (await station.generateKey('idevid', 'P-256')).spkiDer;
    await station.close();
    await writeBundle(dir, {
      device: bundleJson(
        { deviceId: '5b0c8f0e-8f3a-4c55-9d0e-0f1f2a3b4c5d', attestation: 'x509', enrollmentId: '6c1d9f1f-9a4b-4d66-8e1f-1a2b3c4d5e6f', provisioningUrl: 'https://127.0.0.1:1', keystore: { type: 'file', dir: 'keys', protector: 'tpm-sealed' } },
        { idevidKeyLabel: 'idevid', tpmTcti: tcti(a) },
      ),
      caBundlePem: '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n',
      idevidChainPem: '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n',
      machineSecret,
    });
    for (let boot = 0; boot < 2; boot++) {
      const ks = await openBundleKeystore(await loadBundle(dir));
      expect((await ks.getKey('idevid'))?.spkiDer.equals(idevid)).toBe(true);
      await ks.close();
      await expect(access(join(dir, 'machine.secret'))).rejects.toThrow(); // gone after the first open
    }
    const sealed = await readFile(join(dir, 'sealed', SEALED_SECRET_FILE));
    expect(sealed.includes(machineSecret)).toBe(false);
    const sealer = await openBundleSealer(await loadBundle(dir));
    expect(Buffer.from((sealer.protector() as { secret: Uint8Array }).secret).equals(machineSecret)).toBe(true);
    await sealer.close();
    await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('fail: after tpm2_pcrextend of an unexpected measurement into PCR 7 the TPM refuses with TPM_SEAL_POLICY_FAILED, and the files stay closed', async () => {
    await a.tpm2('tpm2_pcrextend', [`7:sha256=${randomBytes(32).toString('hex')}`]);
    await expect(DeviceSealer.open({ dir: layout(device).sealed, tcti: tcti(a), create: false })).rejects.toEqual(code('TPM_SEAL_POLICY_FAILED'));
    // And nothing was replaced: the sealed file is the one written at first boot.
    await expect(DeviceSealer.open({ dir: layout(device).sealed, tcti: tcti(a) })).rejects.toEqual(code('TPM_SEAL_POLICY_FAILED'));
  }, 30_000);
});
