/**
 * The device SDK against the real Fleetkey server (SQLite): devices manufactured the way
 * `fleetkey manufacture` does it (registered, IDevID issued by the manufacturing CA or a key
 * derived from a symmetric group), then provisioned over the real device plane (HTTPS, mTLS).
 * Refusals first, as step-ca orders its tables.
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:https';
import { execFileSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deriveDeviceKey, toPem, zero } from '@fleetkey/crypto';
import type { DeviceBundle } from '@fleetkey/protocol';
import { createCsr, FileKeystore, Pkcs11Keystore, type Keystore } from '../src/keystore/index.js';
import { loadBundle, provision, ProvisioningRefusedError, writeBundle, type ProvisionOptions } from '../src/provisioning/index.js';
import { createSoftHsm, softHsmAvailable, type SoftHsm } from '../../crypto/test/support/softhsm.js';
import { startTestServer, type TestServer } from '../../server/test/support/test-server.js';
import { codeOf } from './support/refusal.js';
import { bundleJson } from './support/bundle-json.js';

const FAST: ProvisionOptions['retry'] = { baseDelayMs: 10, maxDelayMs: 50, maxAttempts: 5 };

describe('provisioning against the real server', () => {
  let t: TestServer;
  let root: string;
  let caBundlePem: string;
  let hsm: SoftHsm | undefined;
  let x509Enrollment: string;
  let symmetric: { id: string; groupKey: Buffer };

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'fk-provision-e2e-'));
    if (softHsmAvailable) hsm = await createSoftHsm(); // before any PKCS#11 use in this process
    // Ephemeral device-plane port: 8443 may be taken by another server on this machine.
    t = await startTestServer('sqlite', { config: { deviceHttp: { host: '127.0.0.1', port: 0 } } });
    caBundlePem = readFileSync(join(t.dataDir, 'ca-bundle.pem'), 'utf8');
    const x = await t.call('POST', '/v1/enrollments', {
      body: { label: 'robots', kind: 'group', attestation: 'x509', allocation: { type: 'template', template: 'robot-{id8}' } },
    });
    expect(x.status).toBe(201);
    x509Enrollment = x.body.enrollment.id;
    const s = await t.call('POST', '/v1/enrollments', { body: { label: 'sensors', kind: 'group', attestation: 'symmetric' } });
    expect(s.status).toBe(201);
    symmetric = { id: s.body.enrollment.id, groupKey: Buffer.from(s.body.groupKey, 'base64') };
  });

  afterAll(async () => {
    await t?.stop();
    await hsm?.cleanup();
    rmSync(root, { recursive: true, force: true });
  });

  async function register(model: string): Promise<string> {
    const r = await t.call('POST', '/v1/devices', { body: { model, serials: { unit: `SN-${randomBytes(3).toString('hex')}` } } });
    expect(r.status).toBe(201);
    return r.body.id as string;
  }

  const deviceJson = (deviceId: string, attestation: 'x509' | 'symmetric', keystore: DeviceBundle['keystore'], extra: Partial<DeviceBundle> = {}): DeviceBundle =>
    bundleJson({ deviceId, attestation, enrollmentId: attestation === 'x509' ? x509Enrollment : symmetric.id, provisioningUrl: t.server.deviceUrl, keystore }, extra);

  /** What `fleetkey manufacture --attestation x509` does for one device, with a file keystore or a token. */
  async function manufactureX509(token?: { keystore: Keystore; module: string; label: string; pinFile: string }): Promise<{ dir: string; id: string }> {
    const id = await register('kuka-kr16');
    const dir = join(mkdtempSync(join(root, 'x-')), id);
    const secret = randomBytes(32);
    const ks = token?.keystore ?? (await FileKeystore.open({ dir: join(dir, 'keys'), protector: { kind: 'machine', secret } }));
    const label = token === undefined ? 'idevid' : `idevid-${id}`;
    try {
      const key = await ks.generateKey(label, 'P-256');
      const csr = toPem(await createCsr(key, { commonName: id }), 'CERTIFICATE REQUEST');
      const issued = await t.call('POST', '/v1/certificates', { body: { deviceId: id, csr, kind: 'idevid' } });
      expect(issued.status).toBe(201);
      const keystore: DeviceBundle['keystore'] =
        token === undefined ? { type: 'file', dir: 'keys', protector: 'machine-secret' } : { type: 'pkcs11', module: token.module, tokenLabel: token.label, pinFile: token.pinFile };
      await writeBundle(dir, {
        device: deviceJson(id, 'x509', keystore, { idevidKeyLabel: label }),
        caBundlePem,
        idevidChainPem: issued.body.chainPem,
        ...(token === undefined ? { machineSecret: secret } : {}),
      });
    } finally {
      if (token === undefined) await ks.close();
      zero(secret);
    }
    return { dir, id };
  }

  async function manufactureSymmetric(keyOverride?: Buffer): Promise<{ dir: string; id: string; key: Buffer }> {
    const id = await register('env-sensor');
    const r = await t.call('POST', `/v1/enrollments/${symmetric.id}/derived-keys`, { body: { deviceId: id } });
    expect(r.status).toBe(200);
    const key = keyOverride ?? Buffer.from(r.body.deviceKey, 'base64');
    const dir = join(mkdtempSync(join(root, 's-')), id);
    await writeBundle(dir, { device: deviceJson(id, 'symmetric', { type: 'file', dir: 'keys', protector: 'machine-secret' }), caBundlePem, deviceKey: key, machineSecret: randomBytes(32) });
    return { dir, id, key };
  }

  it('fail: a device revoked after manufacture is refused (PROVISIONING_REFUSED) with no retry', async () => {
    const d = await manufactureX509();
    expect((await t.call('POST', `/v1/devices/${d.id}/revoke`, { body: { reason: 'stolen from the line' } })).status).toBe(200);
    let attempts = 0;
    const { code, error } = await codeOf(provision(d.dir, { retry: FAST, onAttempt: () => attempts++ }));
    expect(code).toBe('PROVISIONING_REFUSED');
    expect(error).toBeInstanceOf(ProvisioningRefusedError);
    expect((error as ProvisioningRefusedError).httpStatus).toBe(403);
    expect(attempts).toBe(1);
    expect(existsSync(join(d.dir, 'provisioned.json'))).toBe(false);
    expect(readdirSync(join(d.dir, 'keys'))).toEqual(['idevid.key']); // the new key was removed again
  });

  it('fail: a symmetric device holding the wrong key is refused, once', async () => {
    const d = await manufactureSymmetric(randomBytes(32));
    let attempts = 0;
    const { code } = await codeOf(provision(d.dir, { retry: FAST, onAttempt: () => attempts++ }));
    expect(code).toBe('PROVISIONING_REFUSED');
    expect(attempts).toBe(1);
  });

  it('fail: the group key itself does not provision a device (only the derived key does)', async () => {
    const d = await manufactureSymmetric(symmetric.groupKey);
    expect((await codeOf(provision(d.dir, { retry: FAST }))).code).toBe('PROVISIONING_REFUSED');
  });

  it('two robots provision with their IDevID over mTLS and get names from the template', async () => {
    const robots = [await manufactureX509(), await manufactureX509()];
    for (const d of robots) {
      let attempts = 0;
      const r = await provision(d.dir, { onAttempt: () => attempts++ });
      expect(attempts).toBe(1);
      expect(r.deviceId).toBe(d.id);
      expect(r.name).toBe(`robot-${d.id.slice(0, 8)}`);
      const cert = new X509Certificate(r.certificatePem);
      expect(cert.subjectAltName).toContain(`urn:uuid:${d.id}`);
      // A new key: not the IDevID's.
      const idevid = new X509Certificate(readFileSync(join(d.dir, 'idevid-chain.pem'), 'utf8'));
      expect(cert.publicKey.export({ type: 'spki', format: 'der' }).equals(idevid.publicKey.export({ type: 'spki', format: 'der' }))).toBe(false);
      expect(readdirSync(join(d.dir, 'keys')).sort()).toEqual(['idevid.key', 'operational-1.key']);
      const device = (await t.call('GET', `/v1/devices/${d.id}`)).body;
      expect(device.status).toBe('provisioned');
      expect(device.name).toBe(r.name);
      expect((await loadBundle(d.dir)).provisioned?.certificatePem).toBe(r.certificatePem);
    }
  });

  it.skipIf(!softHsmAvailable)('a robot whose IDevID key is in a PKCS#11 token (SoftHSM2) proves possession by signing the server nonce', async () => {
    const tok = await hsm!.addToken(`fk-robots-${randomBytes(2).toString('hex')}`);
    const pinFile = join(root, `${tok.label}.pin`);
    writeFileSync(pinFile, `${tok.pin}\n`, { mode: 0o600 });
    const keystore = Pkcs11Keystore.open({ module: hsm!.module, tokenLabel: tok.label, pin: tok.pin });
    let d: { dir: string; id: string };
    try {
      d = await manufactureX509({ keystore, module: hsm!.module, label: tok.label, pinFile });
    } finally {
      await keystore.close();
    }
    const r = await provision(d.dir);
    expect(r.deviceId).toBe(d.id);
    expect(new X509Certificate(r.certificatePem).subjectAltName).toContain(`urn:uuid:${d.id}`);
    const again = Pkcs11Keystore.open({ module: hsm!.module, tokenLabel: tok.label, pin: tok.pin });
    try {
      expect((await again.getKey('operational-1'))?.spkiDer.equals(new X509Certificate(r.certificatePem).publicKey.export({ type: 'spki', format: 'der' }))).toBe(true);
    } finally {
      await again.close();
    }
  });

  it('the nonce path also works for a file key when forced (x509Proof: nonce)', async () => {
    const d = await manufactureX509();
    const r = await provision(d.dir, { x509Proof: 'nonce' });
    expect(r.deviceId).toBe(d.id);
  });

  it('a sensor provisions with a SAS token from its derived key (HMAC-SHA256(groupKey, deviceId))', async () => {
    const d = await manufactureSymmetric();
    expect(d.key.equals(deriveDeviceKey(symmetric.groupKey, d.id))).toBe(true);
    const r = await provision(d.dir);
    expect(r.deviceId).toBe(d.id);
    expect((await t.call('GET', `/v1/devices/${d.id}`)).body.status).toBe('provisioned');
  });

  it('retries 503s from a front end, then provisions through it: three attempts, one reaches the server', async () => {
    // A TLS-terminating front end (as a load balancer during a deploy) answering 503 twice, then
    // forwarding to the real device plane. The bundle trusts the front end's certificate.
    const dir = mkdtempSync(join(root, 'lb-'));
    execFileSync('openssl', [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem')],
      ...['-days', '2', '-subj', '/CN=lb', '-addext', 'subjectAltName=IP:127.0.0.1', '-addext', 'basicConstraints=critical,CA:FALSE'],
    ], { stdio: 'ignore' });
    let seen = 0;
    let forwarded = 0;
    const lb: Server = createServer({ key: readFileSync(join(dir, 'k.pem')), cert: readFileSync(join(dir, 'c.pem')) }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (++seen <= 2) {
          res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'UNAVAILABLE', message: 'The service is not available.', requestId: 'lb' }));
          return;
        }
        forwarded++;
        const up = request(`${t.server.deviceUrl}${req.url}`, { method: 'POST', ca: caBundlePem, headers: { 'content-type': 'application/json' }, agent: false }, (ur) => {
          res.writeHead(ur.statusCode ?? 502, { 'content-type': 'application/json' });
          ur.pipe(res);
        });
        up.end(Buffer.concat(chunks));
      });
    });
    await new Promise<void>((r) => lb.listen(0, '127.0.0.1', r));
    try {
      const d = await manufactureSymmetric();
      const b = await loadBundle(d.dir);
      const trusted = { ...b.device, provisioningUrl: `https://127.0.0.1:${(lb.address() as AddressInfo).port}` };
      await writeBundle(d.dir, { device: trusted, caBundlePem: caBundlePem + readFileSync(join(dir, 'c.pem'), 'utf8') });
      let attempts = 0;
      const r = await provision(d.dir, { retry: FAST, onAttempt: () => attempts++ });
      expect(r.deviceId).toBe(d.id);
      expect(attempts).toBe(3);
      expect(seen).toBe(3);
      expect(forwarded).toBe(1);
    } finally {
      await new Promise<void>((r) => lb.close(() => r()));
    }
  });
});
