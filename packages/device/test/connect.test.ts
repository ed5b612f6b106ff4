/**
 * The device SDK's connection against the real Fleetkey server (SQLite) and its real MQTT gateway:
 * devices manufactured and provisioned with the SDK itself, then connected by mTLS or SAS.
 * Network cuts go through a TCP relay the test owns, so the SDK sees a real dropped socket.
 * Refusals first.
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { toPem, zero } from '@fleetkey/crypto';
import type { DeviceBundle } from '@fleetkey/protocol';
import { createCsr, FileKeystore } from '../src/keystore/index.js';
import { provision, writeBundle } from '../src/provisioning/index.js';
import { connect, ConnectionStoppedError, type ConnectOptions, type DeviceConnection, type StopInfo } from '../src/connection/index.js';
import { startTestServer, type TestServer } from '../../server/test/support/test-server.js';
import { bundleJson } from './support/bundle-json.js';

const FAST: ConnectOptions = { reconnect: { baseDelayMs: 20, maxDelayMs: 100 }, connectTimeoutMs: 3000 };

async function until<T>(f: () => T | undefined | Promise<T | undefined>, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A TCP relay to the gateway that the test can cut and restore on the same port. */
class Relay {
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  port = 0;
  constructor(readonly target: { host: string; port: number }) {}
  async open(): Promise<void> {
    const server = createServer((inbound) => {
      const outbound = tcpConnect(this.target.port, this.target.host);
      for (const s of [inbound, outbound]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => undefined);
      }
      inbound.pipe(outbound).pipe(inbound);
    });
    await new Promise<void>((r) => server.listen(this.port, '127.0.0.1', r));
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
  }
  async cut(): Promise<void> {
    const s = this.#server;
    this.#server = undefined;
    for (const sock of this.#sockets) sock.destroy();
    if (s !== undefined) await new Promise((r) => s.close(r));
  }
}

describe('connect(): the device SDK on the real gateway', () => {
  let t: TestServer;
  let root: string;
  let caBundlePem: string;
  let x509Enrollment: string;
  let symmetric: { id: string };
  const open: DeviceConnection[] = [];

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'fk-connect-'));
    t = await startTestServer('sqlite', { config: { deviceHttp: { host: '127.0.0.1', port: 0 } } });
    caBundlePem = readFileSync(join(t.dataDir, 'ca-bundle.pem'), 'utf8');
    const x = await t.call('POST', '/v1/enrollments', { body: { label: 'robots', kind: 'group', attestation: 'x509', allocation: { type: 'template', template: 'robot-{id8}' } } });
    expect(x.status).toBe(201);
    x509Enrollment = x.body.enrollment.id;
    const s = await t.call('POST', '/v1/enrollments', { body: { label: 'sensors', kind: 'group', attestation: 'symmetric' } });
    symmetric = { id: s.body.enrollment.id };
  });

  afterAll(async () => {
    for (const c of open) await c.close().catch(() => undefined);
    await t?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const track = (c: DeviceConnection): DeviceConnection => {
    open.push(c);
    return c;
  };

  const deviceJson = (deviceId: string, attestation: 'x509' | 'symmetric', extra: Partial<DeviceBundle> = {}): DeviceBundle =>
    bundleJson({ deviceId, attestation, enrollmentId: attestation === 'x509' ? x509Enrollment : symmetric.id, provisioningUrl: t.server.deviceUrl, keystore: { type: 'file', dir: 'keys', protector: 'machine-secret' } }, extra);

  /** What `fleetkey manufacture --attestation x509` writes for one device (file keystore). */
  async function manufactureX509(): Promise<{ dir: string; id: string }> {
    const id = (await t.call('POST', '/v1/devices', { body: { model: 'kuka-kr16' } })).body.id as string;
    const dir = join(mkdtempSync(join(root, 'x-')), id);
    const secret = randomBytes(32);
    const ks = await FileKeystore.open({ dir: join(dir, 'keys'), protector: { kind: 'machine', secret } });
    try {
      const key = await ks.generateKey('idevid', 'P-256');
      const csr = toPem(await createCsr(key, { commonName: id }), 'CERTIFICATE REQUEST');
      const issued = await t.call('POST', '/v1/certificates', { body: { deviceId: id, csr, kind: 'idevid' } });
      expect(issued.status).toBe(201);
      await writeBundle(dir, { device: deviceJson(id, 'x509', { idevidKeyLabel: 'idevid' }), caBundlePem, idevidChainPem: issued.body.chainPem, machineSecret: secret });
    } finally {
      await ks.close();
      zero(secret);
    }
    return { dir, id };
  }

  async function provisionedRobot(): Promise<{ dir: string; id: string; name: string }> {
    const d = await manufactureX509();
    const r = await provision(d.dir);
    return { ...d, name: r.name! };
  }

  test('fail: a bundle that was never provisioned is refused before any network traffic', async () => {
    const d = await manufactureX509();
    await expect(connect(d.dir, FAST)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  test('fail: a revoked device is refused at its first CONNACK and connect() rejects with the reason', async () => {
    const d = await provisionedRobot();
    expect((await t.call('POST', `/v1/devices/${d.id}/revoke`, { body: { reason: 'scrapped' } })).status).toBe(200);
    const e = await connect(d.dir, FAST).then(() => undefined, (err: unknown) => err);
    expect(e).toBeInstanceOf(ConnectionStoppedError);
    expect(e).toMatchObject({ reason: 'not-authorized', reasonCode: 0x87, code: 'FORBIDDEN' });
  });

  test('fail: a gateway whose certificate does not chain to the bundle\'s CA stops the loop (untrusted-server)', async () => {
    const d = await provisionedRobot();
    const other = mkdtempSync(join(root, 'ca-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(other, 'k.pem'), '-out', join(other, 'c.pem'), '-subj', '/CN=Not Fleetkey', '-days', '1'], { stdio: 'pipe' });
    writeFileSync(join(d.dir, 'ca-bundle.pem'), readFileSync(join(other, 'c.pem')), { mode: 0o600 });
    const e = await connect(d.dir, FAST).then(() => undefined, (err: unknown) => err);
    expect(e).toMatchObject({ reason: 'untrusted-server', code: 'UNAVAILABLE' });
  });

  test('no more than the server\'s Receive Maximum in flight: 300 concurrent sends, no DISCONNECT 0x93', async () => {
    const d = await provisionedRobot();
    const c = track(await connect(d.dir, FAST));
    const drops: unknown[] = [];
    c.on('disconnected', (x) => drops.push(x));
    const rs = await Promise.all(Array.from({ length: 300 }, (_, i) => c.sendTelemetry({ i })));
    expect(drops).toEqual([]);
    expect(rs.every((r) => r.delivered)).toBe(true);
    expect((await t.call('GET', `/v1/data/telemetry?deviceId=${d.id}&limit=1000`)).body.points).toHaveLength(300);
    await c.close();
  });

  test('mTLS: diagnostics and telemetry reach the server, stamped with the name and device', async () => {
    const d = await provisionedRobot();
    const c = track(await connect(d.dir, FAST));
    expect(c.connected).toBe(true);
    expect(c.auth).toBe('mtls');
    expect(await c.sendDiagnostics({ partsPerHour: 41 })).toEqual({ delivered: true });
    expect(await c.sendTelemetry({ jointTorque: 1.25 })).toEqual({ delivered: true });
    await c.sendState({ mode: 'auto' });
    const diag = (await t.call('GET', `/v1/data/diagnostics?name=${d.name}`)).body.points;
    expect(diag).toHaveLength(1);
    expect(diag[0]).toMatchObject({ deviceId: d.id, name: d.name, payload: { partsPerHour: 41 } });
    expect((await t.call('GET', `/v1/data/telemetry?deviceId=${d.id}`)).body.points[0].payload).toEqual({ jointTorque: 1.25 });
    await c.close();
    expect(c.stopped).toMatchObject({ reason: 'closed' });
    await expect(c.sendTelemetry({ late: true })).rejects.toBeInstanceOf(ConnectionStoppedError);
  });

  test('a command sent to the name runs the handler and completes with its result (MQTT 3.1.1 too)', async () => {
    const d = await provisionedRobot();
    const c = track(await connect(d.dir, { ...FAST, protocolVersion: 4 }));
    const seen: unknown[] = [];
    c.onCommand((cmd) => {
      seen.push(cmd);
      return { ok: true, rpm: (cmd.payload as { rpm: number }).rpm };
    });
    const sent = await t.call('POST', '/v1/commands', { body: { name: d.name, type: 'set-speed', payload: { rpm: 900 }, ttl: '10m' } });
    expect(sent.status).toBe(201);
    const done = await until(async () => {
      const cmd = (await t.call('GET', `/v1/commands/${sent.body.id}`)).body;
      return cmd.status === 'completed' ? cmd : undefined;
    });
    expect(done).toMatchObject({ deliveredTo: d.id, result: { ok: true, rpm: 900 } });
    expect(seen).toEqual([expect.objectContaining({ id: sent.body.id, type: 'set-speed', payload: { rpm: 900 } })]);
    await c.close();
  });

  test('offline: a cut network buffers messages encrypted on disk and replays them in order after reconnect', async () => {
    const d = await provisionedRobot();
    const gw = new URL(t.server.mqttUrl!);
    const relay = new Relay({ host: gw.hostname, port: Number(gw.port) });
    await relay.open();
    const c = track(await connect(d.dir, { ...FAST, mqttUrl: `mqtts://127.0.0.1:${relay.port}` }));
    let reconnects = 0;
    c.on('reconnecting', () => reconnects++);
    expect(await c.sendTelemetry({ n: 0 })).toEqual({ delivered: true });
    await relay.cut();
    await until(() => (c.connected ? undefined : true));
    const results = [];
    for (let n = 1; n <= 20; n++) results.push(await c.sendTelemetry({ n }));
    expect(results.every((r) => r.delivered === false)).toBe(true);
    expect(c.buffered).toBe(20);
    // The buffer on disk is ciphertext: no payload appears in clear.
    expect(readFileSync(join(d.dir, 'offline', 'offline.log'), 'latin1')).not.toContain('"n":');
    expect(reconnects).toBeGreaterThan(0);
    await relay.open();
    await until(() => (c.connected ? true : undefined));
    expect((await c.flush()).buffered).toBe(0);
    const points = (await t.call('GET', `/v1/data/telemetry?deviceId=${d.id}`)).body.points;
    expect(points.map((p: { payload: { n: number } }) => p.payload.n)).toEqual(Array.from({ length: 21 }, (_, i) => i));
    await c.close();
    await relay.cut();
  });

  test('fail: a list of endpoints with one plaintext mqtt: URL is refused before any connection (issue 15)', async () => {
    const d = await provisionedRobot();
    await expect(connect(d.dir, { ...FAST, mqttUrls: [t.server.mqttUrl!, `mqtt://127.0.0.1:1883`] })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(connect(d.dir, { ...FAST, mqttUrls: ['not a url'] })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  test('failover (issue 15): with several endpoints, a node that goes away sends the device to the next one, with backoff', async () => {
    const d = await provisionedRobot();
    const gw = new URL(t.server.mqttUrl!);
    // Two "nodes": two relays to the one gateway, each cut on its own.
    const a = new Relay({ host: gw.hostname, port: Number(gw.port) });
    const b = new Relay({ host: gw.hostname, port: Number(gw.port) });
    await a.open();
    await b.open();
    const urlA = `mqtts://127.0.0.1:${a.port}`;
    const urlB = `mqtts://127.0.0.1:${b.port}`;
    const endpoints: string[] = [];
    const c = track(await connect(d.dir, { ...FAST, mqttUrls: [urlA, urlB] }));
    c.on('connected', (e) => endpoints.push(e.endpoint));
    expect(await c.sendTelemetry({ n: 1 })).toEqual({ delivered: true });
    await a.cut();
    await until(() => (endpoints.includes(urlB) && c.connected ? true : undefined), 10_000);
    expect(await c.sendTelemetry({ n: 2 })).toEqual({ delivered: true });
    await c.close();
    await b.cut();
  });

  test('revocation: DISCONNECT 0x98 stops the connection with a reason and no further attempts', async () => {
    const d = await provisionedRobot();
    const c = track(await connect(d.dir, FAST));
    let attempts = 0;
    c.on('reconnecting', () => attempts++);
    const stopped = new Promise<StopInfo>((r) => c.once('stopped', r));
    expect((await t.call('POST', `/v1/devices/${d.id}/revoke`, { body: { reason: 'stolen' } })).status).toBe(200);
    expect(await stopped).toMatchObject({ reason: 'revoked', code: 0x98 });
    await new Promise((r) => setTimeout(r, 300));
    expect(attempts).toBe(0);
    expect(c.connected).toBe(false);
    await expect(c.sendDiagnostics({ x: 1 })).rejects.toMatchObject({ reason: 'revoked' });
    await c.close();
  });

  test('revocation under MQTT 3.1.1: the socket is dropped, the next CONNACK (5) stops the loop', async () => {
    const d = await provisionedRobot();
    const c = track(await connect(d.dir, { ...FAST, protocolVersion: 4 }));
    const stopped = new Promise<StopInfo>((r) => c.once('stopped', r));
    let attempts = 0;
    c.on('reconnecting', () => attempts++);
    expect((await t.call('POST', `/v1/devices/${d.id}/revoke`, { body: { reason: 'stolen' } })).status).toBe(200);
    expect(await stopped).toMatchObject({ reason: 'not-authorized', code: 5 });
    const after = attempts;
    await new Promise((r) => setTimeout(r, 300));
    expect(attempts).toBe(after);
    await c.close();
  });

  test('the renewal timer fires by itself when the certificate is due, and not again straight away', async () => {
    const d = await provisionedRobot();
    const due = Date.parse(JSON.parse(readFileSync(join(d.dir, 'provisioned.json'), 'utf8')).renewAfter);
    const renewed: string[] = [];
    const c = track(await connect(d.dir, { ...FAST, now: () => new Date(due + 1000), waitForConnection: false }));
    c.on('renewed', (r) => renewed.push(r.serial));
    await until(() => (renewed.length === 1 && c.connected && c.certificateSerial === renewed[0] ? true : undefined));
    // The frozen clock says the new certificate is due too; the 60 s floor stops a renewal loop.
    await new Promise((r) => setTimeout(r, 300));
    expect(renewed).toHaveLength(1);
    await c.close();
  });

  test('symmetric: a SAS token over mqtt/<id> (fresh per attempt) authenticates the device', async () => {
    const id = (await t.call('POST', '/v1/devices', { body: { model: 'env-sensor' } })).body.id as string;
    const k = await t.call('POST', `/v1/enrollments/${symmetric.id}/derived-keys`, { body: { deviceId: id } });
    const dir = join(mkdtempSync(join(root, 's-')), id);
    await writeBundle(dir, { device: deviceJson(id, 'symmetric'), caBundlePem, deviceKey: Buffer.from(k.body.deviceKey, 'base64'), machineSecret: randomBytes(32) });
    await provision(dir);
    const c = track(await connect(dir, FAST));
    expect(c.auth).toBe('sas');
    expect(c.certificateSerial).toBeUndefined();
    await c.sendTelemetry({ t: 21.5 });
    expect((await t.call('GET', `/v1/data/telemetry?deviceId=${id}`)).body.points[0].payload).toEqual({ t: 21.5 });
    await expect(c.renewCertificate()).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await c.close();
  });

  test('renewal at 2/3 of the lifetime: new key, new certificate in the bundle, reconnected with it', async () => {
    const d = await provisionedRobot();
    let clock = Date.now();
    // The injected clock stands still after the jump, where the renewed certificate (issued the same
    // second) would be due again at once: renewal is driven by hand here, not by the timer.
    const c = track(await connect(d.dir, { ...FAST, autoRenew: false, now: () => new Date(clock) }));
    const before = c.certificateSerial!;
    const cert = new X509Certificate(c.provisioned.certificatePem);
    const from = Date.parse(cert.validFrom);
    const to = Date.parse(cert.validTo);
    expect(Math.abs(c.renewalDueAt().getTime() - (from + ((to - from) * 2) / 3))).toBeLessThan(120_000);
    expect(await c.renewIfDue()).toBe(false);
    clock = c.renewalDueAt().getTime() + 1;
    const reconnected = new Promise<{ serial: string | undefined }>((r) => c.once('connected', r));
    expect(await c.renewIfDue()).toBe(true);
    const after = (await reconnected).serial!;
    expect(after).not.toBe(before);
    expect(c.certificateSerial).toBe(after);
    const onDisk = JSON.parse(readFileSync(join(d.dir, 'provisioned.json'), 'utf8'));
    expect(onDisk.operationalKeyLabel).toBe('operational-2');
    expect(new X509Certificate(onDisk.certificatePem).serialNumber.toLowerCase()).toBe(after);
    expect(new X509Certificate(readFileSync(join(d.dir, 'operational-chain.pem'), 'utf8')).serialNumber.toLowerCase()).toBe(after);
    expect((await t.call('GET', `/v1/certificates/${before}`)).body.status).toBe('superseded');
    expect((await t.call('GET', `/v1/certificates/${after}`)).body).toMatchObject({ deviceId: d.id, status: 'valid' });
    await c.sendTelemetry({ renewed: true });
    expect((await t.call('GET', `/v1/data/telemetry?deviceId=${d.id}`)).body.points.at(-1).payload).toEqual({ renewed: true });
    await c.close();
    // A fresh process uses the renewed certificate from the bundle.
    const again = track(await connect(d.dir, FAST));
    expect(again.certificateSerial).toBe(after);
    await again.close();
  });
});
