/**
 * The SDK's retry and refusal behaviour, against a real HTTPS server on loopback that plays the
 * device plane (the SDK's collaborator) with scripted answers: 503, 429, 403, 400, a dead port,
 * an untrusted certificate, and finally a real operational certificate issued from the CSR.
 * Bundle loading and its permission checks are here too.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { issueDeviceCertificate, parseAndVerifyCsr, toPem, verifySasToken } from '@fleetkey/crypto';
import type { DeviceBundle } from '@fleetkey/protocol';
import {
  backoffDelay,
  loadBundle,
  provision,
  ProvisioningGaveUpError,
  ProvisioningRefusedError,
  writeBundle,
  type RetryPolicy,
} from '../src/provisioning/index.js';
import { makeTestPki, type TestPki } from '../../crypto/test/support/pki-fixtures.js';
import { codeOf } from './support/refusal.js';

const FAST: Partial<RetryPolicy> = { baseDelayMs: 5, maxDelayMs: 40, maxAttempts: 6 };

type Answer = { status: number; body?: unknown; headers?: Record<string, string> } | 'issue' | 'wrong-key';

interface Collaborator {
  url: string;
  requests: { path: string; body: any }[];
  script: Answer[];
  close(): Promise<void>;
}

let root: string;
let pki: TestPki;
let serverTls: { key: string; cert: string };
let otherCaPem: string;

/** A self-signed P-256 server certificate for 127.0.0.1 made by OpenSSL (trusted as its own anchor). */
function selfSigned(dir: string, cn: string): { key: string; cert: string } {
  execFileSync('openssl', [
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
    ...['-keyout', join(dir, `${cn}.key`), '-out', join(dir, `${cn}.pem`), '-days', '2', '-subj', `/CN=${cn}`],
    ...['-addext', 'subjectAltName=IP:127.0.0.1', '-addext', 'basicConstraints=critical,CA:FALSE'],
  ], { stdio: 'ignore' });
  return { key: readFileSync(join(dir, `${cn}.key`), 'utf8'), cert: readFileSync(join(dir, `${cn}.pem`), 'utf8') };
}

async function startCollaborator(script: Answer[]): Promise<Collaborator> {
  const requests: Collaborator['requests'] = [];
  const server: Server = createServer({ ...serverTls }, (req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      const body = text === '' ? null : JSON.parse(text);
      requests.push({ path: req.url ?? '', body });
      const answer = script.length > 1 ? script.shift()! : script[0]!;
      const send = (status: number, payload: unknown, headers: Record<string, string> = {}): void => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify(payload));
      };
      if (answer === 'issue' || answer === 'wrong-key') {
        void issue(body, answer === 'wrong-key').then((r) => send(200, r));
        return;
      }
      send(answer.status, answer.body ?? { code: 'X', message: 'scripted', requestId: randomUUID() }, answer.headers);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    requests,
    script,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** What the real server does at the end of every method: a certificate for the CSR's key. */
async function issue(body: { deviceId: string; csr: string }, wrongKey: boolean) {
  const csr = parseAndVerifyCsr(body.csr);
  const spkiDer = wrongKey ? parseAndVerifyCsr(otherCsr()).spkiDer : csr.spkiDer;
  const now = Date.now();
  const cert = await issueDeviceCertificate(pki.template, {
    deviceId: body.deviceId,
    spkiDer,
    notBefore: new Date(now),
    notAfter: new Date(now + 86_400_000),
    method: 'symmetric:test',
    kind: 'operational',
  });
  const certificatePem = toPem(cert.der, 'CERTIFICATE');
  const issuingPem = toPem(pki.intermediateDer, 'CERTIFICATE');
  return {
    deviceId: body.deviceId,
    name: 'line-03-left-welding-12',
    certificatePem,
    chainPem: certificatePem + issuingPem,
    caBundlePem: toPem(pki.rootDer, 'CERTIFICATE') + issuingPem,
    gateway: { mqttUrl: null, deviceUrl: 'https://127.0.0.1:1' },
    notAfter: new Date(now + 86_400_000).toISOString(),
    renewAfter: new Date(now + 57_600_000).toISOString(),
  };
}

function otherCsr(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fk-csr-'));
  try {
    execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', join(dir, 'k.pem')]);
    return execFileSync('openssl', ['req', '-new', '-key', join(dir, 'k.pem'), '-subj', '/CN=other'], { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A symmetric-key bundle pointing at `url`, trusting the collaborator and the test PKI root. */
async function symmetricBundle(url: string, deviceKey = randomBytes(32), trust = serverTls.cert + toPem(pki.rootDer, 'CERTIFICATE')) {
  const dir = join(mkdtempSync(join(root, 'b-')), 'bundle');
  const device: DeviceBundle = {
    version: 1,
    deviceId: randomUUID(),
    model: 'kuka-kr16',
    serials: { unit: 'SN-000001' },
    attestation: 'symmetric',
    enrollmentId: randomUUID(),
    provisioningUrl: url,
    keystore: { type: 'file', dir: 'keys', protector: 'machine-secret' },
    idevidKeyLabel: null,
    tpmTcti: null,
  };
  await writeBundle(dir, { device, caBundlePem: trust, deviceKey, machineSecret: randomBytes(32) });
  return { dir, device, deviceKey };
}

const keyFiles = (dir: string): string[] => (existsSync(join(dir, 'keys')) ? readdirSync(join(dir, 'keys')) : []);

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'fk-provision-retry-'));
  pki = await makeTestPki();
  serverTls = selfSigned(root, 'device-plane');
  otherCaPem = selfSigned(root, 'impostor').cert;
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('provision() against a scripted device plane', () => {
  let srv: Collaborator | undefined;
  beforeEach(async () => {
    await srv?.close();
    srv = undefined;
  });
  afterAll(async () => srv?.close());

  it('fail: 403 PROVISIONING_REFUSED stops at once — one request, no retry, the new key removed', async () => {
    srv = await startCollaborator([{ status: 403, body: { code: 'PROVISIONING_REFUSED', message: 'Provisioning was refused.', requestId: 'req-1' } }]);
    const b = await symmetricBundle(srv.url);
    let attempts = 0;
    const { code, error } = await codeOf(provision(b.dir, { retry: FAST, onAttempt: () => attempts++ }));
    expect(code).toBe('PROVISIONING_REFUSED');
    expect(error).toBeInstanceOf(ProvisioningRefusedError);
    expect((error as ProvisioningRefusedError).requestId).toBe('req-1');
    expect((error as ProvisioningRefusedError).httpStatus).toBe(403);
    expect(attempts).toBe(1);
    expect(srv.requests).toHaveLength(1);
    expect(existsSync(join(b.dir, 'provisioned.json'))).toBe(false);
    expect(keyFiles(b.dir)).toEqual([]);
  });

  it('fail: 400 VALIDATION_FAILED is definitive too; a code this SDK does not know still reads as a refusal', async () => {
    srv = await startCollaborator([{ status: 400, body: { code: 'VALIDATION_FAILED', message: 'x', requestId: 'r' } }]);
    const b = await symmetricBundle(srv.url);
    expect((await codeOf(provision(b.dir, { retry: FAST }))).code).toBe('VALIDATION_FAILED');
    expect(srv.requests).toHaveLength(1);
    srv.script.splice(0, 1, { status: 403, body: { code: 'SOME_FUTURE_CODE', message: 'x', requestId: 'r' } });
    expect((await codeOf(provision(b.dir, { retry: FAST }))).code).toBe('PROVISIONING_REFUSED');
    expect(srv.requests).toHaveLength(2);
  });

  it('503, 503, 429 then success: four attempts, each with a fresh single-use token; files written 0600', async () => {
    srv = await startCollaborator([{ status: 503 }, { status: 503 }, { status: 429, headers: { 'retry-after': '0' } }, 'issue']);
    const b = await symmetricBundle(srv.url);
    const delays: number[] = [];
    const r = await provision(b.dir, { retry: FAST, onRetry: ({ delayMs }) => delays.push(delayMs) });
    expect(srv.requests).toHaveLength(4);
    expect(delays).toHaveLength(3);
    // Full jitter: each wait within [0, min(cap, base·2^(n−1))].
    delays.forEach((d, i) => expect(d).toBeLessThanOrEqual(Math.min(40, 5 * 2 ** i)));
    const tokens = srv.requests.map((q) => q.body.token as string);
    expect(new Set(tokens).size).toBe(4);
    for (const q of srv.requests) {
      expect(q.path).toBe('/device/v1/provision/symmetric');
      expect(q.body.deviceId).toBe(b.device.deviceId);
      const v = await verifySasToken(q.body.token, { expectedResource: `provision/${b.device.deviceId}`, key: b.deviceKey, maxLifetimeSeconds: 310 });
      expect(v.ok).toBe(true);
    }
    expect(r.deviceId).toBe(b.device.deviceId);
    expect(r.name).toBe('line-03-left-welding-12');
    for (const f of ['provisioned.json', 'operational-chain.pem']) expect(statSync(join(b.dir, f)).mode & 0o777).toBe(0o600);
    const loaded = await loadBundle(b.dir);
    expect(loaded.provisioned?.operationalKeyLabel).toBe('operational-1');
    expect(keyFiles(b.dir)).toEqual(['operational-1.key']);
    // The certificate is for the key now in the keystore, as the CSR asked.
    const cert = new X509Certificate(readFileSync(join(b.dir, 'operational-chain.pem'), 'utf8'));
    expect(cert.subject).toContain(b.device.deviceId);
  });

  it('a second provisioning run makes operational-2, never reusing a key', async () => {
    srv = await startCollaborator(['issue']);
    const b = await symmetricBundle(srv.url);
    await provision(b.dir, { retry: FAST });
    await provision(b.dir, { retry: FAST });
    expect(keyFiles(b.dir).sort()).toEqual(['operational-1.key', 'operational-2.key']);
    expect((await loadBundle(b.dir)).provisioned?.operationalKeyLabel).toBe('operational-2');
    const spki = (i: number) => parseAndVerifyCsr(srv!.requests[i]!.body.csr).spkiDer.toString('hex');
    expect(spki(0)).not.toBe(spki(1));
  });

  it('gives up after maxAttempts on a server that stays at 503 (UNAVAILABLE) or 429 (RATE_LIMITED)', async () => {
    srv = await startCollaborator([{ status: 503 }]);
    const b = await symmetricBundle(srv.url);
    const { code, error } = await codeOf(provision(b.dir, { retry: { ...FAST, maxAttempts: 3 } }));
    expect(code).toBe('UNAVAILABLE');
    expect(error).toBeInstanceOf(ProvisioningGaveUpError);
    expect((error as ProvisioningGaveUpError).attempts).toBe(3);
    expect(srv.requests).toHaveLength(3);
    expect(keyFiles(b.dir)).toEqual([]);

    srv.script.splice(0, 1, { status: 429 });
    const limited = await codeOf(provision(b.dir, { retry: { ...FAST, maxAttempts: 2 } }));
    expect(limited.code).toBe('RATE_LIMITED');
    expect(srv.requests).toHaveLength(5);
  });

  it('the time budget ends the loop before maxAttempts when Retry-After asks for more than is left', async () => {
    srv = await startCollaborator([{ status: 429, headers: { 'retry-after': '5' } }]);
    const b = await symmetricBundle(srv.url);
    const started = Date.now();
    const { error } = await codeOf(provision(b.dir, { retry: { maxAttempts: 10, baseDelayMs: 5, maxDelayMs: 10_000, maxElapsedMs: 1000 } }));
    expect((error as ProvisioningGaveUpError).attempts).toBe(1);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('retries network failures (nothing listening) and then gives up', async () => {
    const dead = await startCollaborator([{ status: 503 }]);
    const url = dead.url;
    await dead.close();
    const b = await symmetricBundle(url);
    let attempts = 0;
    const { code } = await codeOf(provision(b.dir, { retry: { ...FAST, maxAttempts: 3 }, onAttempt: () => attempts++ }));
    expect(code).toBe('UNAVAILABLE');
    expect(attempts).toBe(3);
  });

  it('fail: a device plane whose certificate is not in the bundle\'s CA file is never retried', async () => {
    srv = await startCollaborator(['issue']);
    const b = await symmetricBundle(srv.url, randomBytes(32), otherCaPem + toPem(pki.rootDer, 'CERTIFICATE'));
    let attempts = 0;
    const { code, error } = await codeOf(provision(b.dir, { retry: FAST, onAttempt: () => attempts++ }));
    expect(code).toBe('UNAVAILABLE');
    expect(error).not.toBeInstanceOf(ProvisioningGaveUpError);
    expect((error as { detail?: string }).detail).toMatch(/not trusted/);
    expect(attempts).toBe(1);
    expect(srv.requests).toHaveLength(0);
  });

  it('fail: a certificate for another key is refused on the device and nothing is recorded', async () => {
    srv = await startCollaborator(['wrong-key']);
    const b = await symmetricBundle(srv.url);
    const { code, error } = await codeOf(provision(b.dir, { retry: FAST }));
    expect(code).toBe('INTERNAL');
    expect((error as { detail?: string }).detail).toMatch(/not for the key/);
    expect(existsSync(join(b.dir, 'provisioned.json'))).toBe(false);
    expect(keyFiles(b.dir)).toEqual([]);
  });
});

describe('loadBundle', () => {
  it('fail: refuses loose permissions on the directory or any file, and symlinks', async () => {
    const b = await symmetricBundle('https://127.0.0.1:1');
    await expect(loadBundle(b.dir)).resolves.toBeDefined();
    chmodSync(join(b.dir, 'device-key.b64'), 0o644);
    expect((await codeOf(loadBundle(b.dir))).code).toBe('KEY_FILE_PERMISSIONS');
    chmodSync(join(b.dir, 'device-key.b64'), 0o600);
    chmodSync(b.dir, 0o755);
    expect((await codeOf(loadBundle(b.dir))).code).toBe('KEY_FILE_PERMISSIONS');
    chmodSync(b.dir, 0o700);
    mkdirSync(join(b.dir, 'keys'), { mode: 0o750 });
    chmodSync(join(b.dir, 'keys'), 0o750);
    expect((await codeOf(loadBundle(b.dir))).code).toBe('KEY_FILE_PERMISSIONS');
    chmodSync(join(b.dir, 'keys'), 0o700);
    symlinkSync('/etc/hostname', join(b.dir, 'extra'));
    expect((await codeOf(loadBundle(b.dir))).code).toBe('KEY_FILE_PERMISSIONS');
  });

  it('fail: refuses a device.json that does not match the schema or misses what its attestation needs', async () => {
    const b = await symmetricBundle('https://127.0.0.1:1');
    const good = JSON.parse(readFileSync(join(b.dir, 'device.json'), 'utf8'));
    const write = (v: unknown) => writeFileSync(join(b.dir, 'device.json'), JSON.stringify(v), { mode: 0o600 });
    for (const bad of [
      { ...good, extra: 1 },
      { ...good, version: 2 },
      { ...good, deviceId: 'not-a-uuid' },
      { ...good, provisioningUrl: 'http://127.0.0.1:1' },
      { ...good, attestation: 'x509' }, // no idevidKeyLabel, no idevid-chain.pem
      { ...good, attestation: 'tpm' }, // no tpmTcti
    ]) {
      write(bad);
      expect((await codeOf(loadBundle(b.dir))).code).toBe('CONFIG_INVALID');
    }
    write(good);
    rmSync(join(b.dir, 'device-key.b64'));
    expect((await codeOf(loadBundle(b.dir))).code).toBe('CONFIG_INVALID');
  });
});

describe('backoffDelay (full jitter)', () => {
  const p: RetryPolicy = { maxAttempts: 10, baseDelayMs: 100, maxDelayMs: 1000, maxElapsedMs: 60_000 };
  it('is uniform in [0, min(cap, base·2^(n−1))), floors at Retry-After, and never exceeds the cap', () => {
    expect(backoffDelay(1, p, () => 0)).toBe(0);
    expect(backoffDelay(1, p, () => 0.999)).toBe(99);
    expect(backoffDelay(3, p, () => 0.999)).toBe(399);
    expect(backoffDelay(20, p, () => 0.999)).toBe(999);
    expect(backoffDelay(1, p, () => 0, 500)).toBe(500);
    expect(backoffDelay(1, p, () => 0, 50_000)).toBe(1000);
  });
});
