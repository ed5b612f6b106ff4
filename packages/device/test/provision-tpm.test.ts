/**
 * TPM attestation from the device side on a real TPM (swtpm) with tpm2-tools, and the
 * operational key generated inside that TPM through tpm2-pkcs11.
 *
 * The device plane here is a loopback HTTPS server implementing tpm/start and tpm/finish with
 * the crypto package's makeCredential (TPM 2.0 Part 1 §24) — the SDK's collaborator; the SDK,
 * tpm2-tools and the TPM are real. provision.test.ts runs the same SDK against the real server.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  computeName,
  initPkcs11Token,
  issueDeviceCertificate,
  makeCredential,
  parseAndVerifyCsr,
  parseTpm2bPublic,
  toPem,
  verifyEkCertificate,
} from '@fleetkey/crypto';
import type { DeviceBundle } from '@fleetkey/protocol';
import { Pkcs11Keystore } from '../src/keystore/index.js';
import { credentialFile, loadBundle, provision, writeBundle } from '../src/provisioning/index.js';
import { makeTestPki, type TestPki } from '../../crypto/test/support/pki-fixtures.js';
import { startSwtpm, swtpmMissing, type Swtpm } from '../../crypto/test/support/swtpm.js';
import { startTestServer } from '../../server/test/support/test-server.js';
import { TPM2_PKCS11_MODULE } from './support/keystores.js';

const missing = (await swtpmMissing()) ?? (existsSync(TPM2_PKCS11_MODULE) ? null : `tpm2-pkcs11 not installed (${TPM2_PKCS11_MODULE})`);

describe.skipIf(missing !== null)(`TPM provisioning on swtpm${missing === null ? '' : ` (skipped: ${missing})`}`, () => {
  let tpm: Swtpm;
  let root: string;
  let pki: TestPki;
  let server: Server;
  let url: string;
  let tls: { key: string; cert: string };
  const seen: { path: string; body: any }[] = [];
  let pin = '';
  const challenges = new Map<string, { credential: Buffer; deviceId: string; ekCertOk: boolean }>();

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'fk-provision-tpm-'));
    tpm = await startSwtpm();
    pki = await makeTestPki();
    execFileSync('openssl', [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(root, 's.key'), '-out', join(root, 's.pem')],
      ...['-days', '2', '-subj', '/CN=device-plane', '-addext', 'subjectAltName=IP:127.0.0.1', '-addext', 'basicConstraints=critical,CA:FALSE'],
    ], { stdio: 'ignore' });
    tls = { key: readFileSync(join(root, 's.key'), 'utf8'), cert: readFileSync(join(root, 's.pem'), 'utf8') };
    const roots = [new X509Certificate(tpm.rootCaPem)];
    const intermediates = [new X509Certificate(tpm.issuerCaPem)];

    server = createServer(tls, (req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        const body = JSON.parse(text);
        seen.push({ path: req.url ?? '', body });
        const send = (status: number, v: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(v));
        };
        if (req.url === '/device/v1/provision/tpm/start') {
          const ekPublic = Buffer.from(body.ekPublic, 'base64');
          const ak = parseTpm2bPublic(Buffer.from(body.akPublic, 'base64'));
          let ekCertOk = false;
          if (body.ekCertificate !== undefined) {
            verifyEkCertificate({ ekCertDer: Buffer.from(body.ekCertificate, 'base64'), ekPublic, roots, intermediates });
            ekCertOk = true;
          }
          const credential = randomBytes(32);
          const mc = makeCredential({ ekPublic, akName: computeName(ak), credential });
          const challengeId = randomUUID();
          challenges.set(challengeId, { credential, deviceId: body.deviceId, ekCertOk });
          send(200, {
            challengeId,
            credentialBlob: mc.credentialBlob.toString('base64'),
            encryptedSecret: mc.encryptedSecret.toString('base64'),
            expiresAt: new Date(Date.now() + 60_000).toISOString(),
          });
          return;
        }
        const c = challenges.get(body.challengeId);
        challenges.delete(body.challengeId);
        if (c === undefined || !Buffer.from(body.secret, 'base64').equals(c.credential)) {
          send(403, { code: 'PROVISIONING_REFUSED', message: 'Provisioning was refused.', requestId: 'r' });
          return;
        }
        void issueFor(c.deviceId, body.csr).then((r) => send(200, r));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }, 60_000);

  afterAll(async () => {
    await new Promise<void>((r) => (server === undefined ? r() : server.close(() => r())));
    await tpm?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  async function issueFor(deviceId: string, csrPem: string) {
    const csr = parseAndVerifyCsr(csrPem);
    const now = Date.now();
    const cert = await issueDeviceCertificate(pki.template, { deviceId, spkiDer: csr.spkiDer, notBefore: new Date(now), notAfter: new Date(now + 86_400_000), method: 'tpm:test', kind: 'operational' });
    const certificatePem = toPem(cert.der, 'CERTIFICATE');
    const issuing = toPem(pki.intermediateDer, 'CERTIFICATE');
    return {
      deviceId,
      name: null,
      certificatePem,
      chainPem: certificatePem + issuing,
      caBundlePem: toPem(pki.rootDer, 'CERTIFICATE') + issuing,
      gateway: { mqttUrl: null, deviceUrl: url },
      notAfter: new Date(now + 86_400_000).toISOString(),
      renewAfter: new Date(now + 57_600_000).toISOString(),
    };
  }

  function tpmDevice(provisioningUrl: string): DeviceBundle {
    return {
      version: 1,
      deviceId: randomUUID(),
      model: 'kuka-kr16',
      serials: {},
      attestation: 'tpm',
      enrollmentId: null,
      provisioningUrl,
      keystore: { type: 'pkcs11', module: TPM2_PKCS11_MODULE, tokenLabel: 'fk-device', pinFile: 'pin' },
      idevidKeyLabel: null,
      tpmTcti: `swtpm:host=127.0.0.1,port=${tpm.port}`,
    };
  }

  it('our credential file is byte-compatible with what tpm2_makecredential -o writes (header, then both TPM2Bs)', async () => {
    await tpm.tpm2('tpm2_createek', ['-c', 'ek.ctx', '-G', 'rsa', '-u', 'ek.pub']);
    await tpm.tpm2('tpm2_createak', ['-C', 'ek.ctx', '-c', 'ak.ctx', '-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa', '-u', 'ak.pub', '-n', 'ak.name', '-f', 'tss']);
    writeFileSync(tpm.path('secret.in'), randomBytes(16));
    const akName = readFileSync(tpm.path('ak.name')).toString('hex');
    await tpm.tpm2('tpm2_makecredential', ['-T', 'none', '-u', 'ek.pub', '-s', 'secret.in', '-n', akName, '-o', 'cred.out']);
    const theirs = readFileSync(tpm.path('cred.out'));
    const idLen = theirs.readUInt16BE(8);
    const blob = theirs.subarray(8, 10 + idLen);
    const secret = theirs.subarray(10 + idLen);
    expect(secret.readUInt16BE(0)).toBe(secret.length - 2);
    expect(credentialFile(blob, secret).equals(theirs)).toBe(true);
    expect(theirs.subarray(0, 8).toString('hex')).toBe('badcc0de00000001');
  });

  it('fail: a blob that is not a TPM2B is refused before it reaches the TPM', () => {
    expect(() => credentialFile(Buffer.from([0, 5, 1]), Buffer.from([0, 1, 1]))).toThrowError(expect.objectContaining({ code: 'TPM_CREDENTIAL_INVALID' }));
  });

  it('provisions: EK + EK certificate + AK, activation on the TPM, operational key inside the TPM (tpm2-pkcs11)', async () => {
    const store = mkdtempSync(join(root, 'p11-'));
    process.env['TPM2_PKCS11_STORE'] = store;
    process.env['TPM2_PKCS11_TCTI'] = `swtpm:host=127.0.0.1,port=${tpm.port}`;
    process.env['TPM2_PKCS11_LOG_LEVEL'] = '0';
    await tpm.tpm2('tpm2_flushcontext', ['-t']);
    pin = `user-${randomBytes(4).toString('hex')}`;
    initPkcs11Token({ module: TPM2_PKCS11_MODULE, label: 'fk-device', soPin: `so-${randomBytes(4).toString('hex')}`, pin });

    const dir = join(mkdtempSync(join(root, 'b-')), 'bundle');
    const device: DeviceBundle = {
      ...tpmDevice(url),
      deviceId: randomUUID(),
    };
    await writeBundle(dir, { device, caBundlePem: tls.cert + toPem(pki.rootDer, 'CERTIFICATE') });
    writeFileSync(join(dir, 'pin'), `${pin}\n`, { mode: 0o600 });

    const r = await provision(dir, { retry: { maxAttempts: 1 } });
    expect(r.deviceId).toBe(device.deviceId);
    expect(seen.map((s) => s.path)).toEqual(['/device/v1/provision/tpm/start', '/device/v1/provision/tpm/finish']);
    const start = seen[0]!.body;
    expect(start.ekCertificate).toBeDefined(); // swtpm_setup --create-ek-cert wrote NV 0x01c00002
    expect(parseTpm2bPublic(Buffer.from(start.ekPublic, 'base64')).type).toBe('rsa');
    expect(parseTpm2bPublic(Buffer.from(start.akPublic, 'base64')).type).toBe('ecc');
    // The certified key is the one the token generated: its public half is in the CSR.
    const csrKey = parseAndVerifyCsr(seen[1]!.body.csr).spkiDer;
    const certKey = new X509Certificate(r.certificatePem).publicKey.export({ type: 'spki', format: 'der' });
    expect(certKey.equals(csrKey)).toBe(true);
    expect((await loadBundle(dir)).provisioned?.operationalKeyLabel).toBe('operational-1');
    // ...and that key lives in the TPM-backed token, not in a file.
    await tpm.tpm2('tpm2_flushcontext', ['-t']);
    const ks = Pkcs11Keystore.open({ module: TPM2_PKCS11_MODULE, tokenLabel: 'fk-device', pin });
    try {
      const key = await ks.getKey('operational-1');
      expect(key?.storage).toBe('pkcs11');
      expect(key?.spkiDer.equals(csrKey)).toBe(true);
    } finally {
      await ks.close();
    }
    expect(existsSync(join(dir, 'keys'))).toBe(false);
  }, 60_000);

  it('provisions against the real server: group TPM enrollment trusting the swtpm manufacturer CA', async () => {
    expect(pin).not.toBe(''); // the token made by the previous test
    const t = await startTestServer('sqlite', { config: { deviceHttp: { host: '127.0.0.1', port: 0 } } });
    try {
      const e = await t.call('POST', '/v1/enrollments', {
        body: { label: 'tpm-robots', kind: 'group', attestation: 'tpm', trustAnchorsPem: tpm.rootCaPem + tpm.issuerCaPem, allocation: { type: 'template', template: 'tpm-{id8}' } },
      });
      expect(e.status).toBe(201);
      const dir = join(mkdtempSync(join(root, 'real-')), 'bundle');
      const device = tpmDevice(t.server.deviceUrl);
      await writeBundle(dir, { device, caBundlePem: readFileSync(join(t.dataDir, 'ca-bundle.pem'), 'utf8') });
      writeFileSync(join(dir, 'pin'), `${pin}\n`, { mode: 0o600 });
      await tpm.tpm2('tpm2_flushcontext', ['-t']);
      const r = await provision(dir, { retry: { maxAttempts: 1 } });
      expect(r.deviceId).toBe(device.deviceId);
      expect(r.name).toBe(`tpm-${device.deviceId.slice(0, 8)}`);
      expect(new X509Certificate(r.certificatePem).subjectAltName).toContain(`urn:uuid:${device.deviceId}`);
      expect((await t.call('GET', `/v1/devices/${device.deviceId}`)).body.status).toBe('provisioned');
      // The TPM's second operational key: operational-1 belongs to the previous test's device.
      expect((await loadBundle(dir)).provisioned?.operationalKeyLabel).toBe('operational-2');
    } finally {
      await t.stop();
    }
  }, 60_000);
});
