/**
 * Revocation of an outside manufacturer CA (RFC 5280 §6.3): a manufacturer built in the test
 * (@peculiar/x509, an independent encoder) issues IDevIDs and CRLs; Fleetkey keeps the CRLs per
 * enrollment, uploaded or fetched from a distribution point on 127.0.0.1, and refuses revoked
 * devices, and every device when the CRL is missing or stale (fail closed).
 */
// tsyringe (inside @peculiar/x509) needs the Reflect metadata API before it loads.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPublicKey, createSign, randomUUID, webcrypto } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { OutboundDestinations } from '../../src/modules/events/webhook-destinations.js';
import { fetchCrl } from '../../src/modules/provisioning/crl-refresher.js';
import { DIALECTS } from '../support/databases.js';
import { mtlsPost } from '../support/mtls.js';
import { fakeDns } from '../support/fake-dns.js';
import { deviceKey, type DeviceKey } from '../support/pki.js';
import { bundleOf, provisionX509 } from '../support/provision.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

x509.cryptoProvider.set(webcrypto as unknown as ReturnType<typeof x509.cryptoProvider.get>);

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;
type Keys = webcrypto.CryptoKeyPair;

interface Maker {
  readonly name: string;
  readonly keys: Keys;
  readonly pem: string;
  crlNumber: number;
}

async function maker(label: string, dpUrl?: string): Promise<Maker> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as Keys;
  const name = `CN=${label} IDevID Root,O=Outside Robotics`;
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 3650 * DAY),
    keys,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ...(dpUrl === undefined ? [] : [new x509.CRLDistributionPointsExtension([dpUrl])]),
    ],
  });
  return { name, keys, pem: root.toString('pem'), crlNumber: 0 };
}

/** An issuing CA of `root`: IDevIDs and CRLs signed by it chain to the root. */
async function issuingCa(root: Maker, label: string): Promise<Maker> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as Keys;
  const name = `CN=${label} IDevID Issuing CA,O=Outside Robotics`;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '02',
    subject: name,
    issuer: root.name,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 3650 * DAY),
    publicKey: keys.publicKey,
    signingKey: root.keys.privateKey,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(root.keys.publicKey),
    ],
  });
  return { name, keys, pem: cert.toString('pem'), crlNumber: 0 };
}

interface Idevid {
  readonly id: string;
  readonly serial: string;
  readonly idevid: DeviceKey;
  readonly idevidChainPem: string;
}

let serials = 0x100;
async function idevid(m: Maker, dpUrl?: string, chain = ''): Promise<Idevid> {
  const id = randomUUID();
  const key = deviceKey();
  const spki = createPublicKey(key.key).export({ type: 'spki', format: 'der' });
  const publicKey = await webcrypto.subtle.importKey('spki', spki, { name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']);
  const serial = (serials++).toString(16).padStart(4, '0');
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: `CN=${id}`,
    issuer: m.name,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 3650 * DAY),
    publicKey,
    signingKey: m.keys.privateKey,
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      await x509.AuthorityKeyIdentifierExtension.create(m.keys.publicKey),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `urn:uuid:${id}` }]),
      ...(dpUrl === undefined ? [] : [new x509.CRLDistributionPointsExtension([dpUrl])]),
    ],
  });
  return { id, serial, idevid: key, idevidChainPem: `${cert.toString('pem')}\n${chain}` };
}

async function crl(m: Maker, o: { revoked?: Idevid[]; thisUpdate?: Date; nextUpdate?: Date; signer?: Keys; number?: number; extensions?: x509.Extension[] } = {}): Promise<Buffer> {
  const number = o.number ?? ++m.crlNumber;
  const c = await x509.X509CrlGenerator.create({
    issuer: m.name,
    thisUpdate: o.thisUpdate ?? new Date(Date.now() - 60_000),
    nextUpdate: o.nextUpdate ?? new Date(Date.now() + DAY),
    entries: (o.revoked ?? []).map((d) => ({ serialNumber: d.serial, revocationDate: new Date(Date.now() - 120_000), reason: x509.X509CrlReason.keyCompromise })),
    extensions: [await x509.AuthorityKeyIdentifierExtension.create(m.keys.publicKey), new x509.Extension('2.5.29.20', false, Buffer.from([0x02, 0x01, number])), ...(o.extensions ?? [])],
    signingKey: (o.signer ?? m.keys).privateKey,
    signingAlgorithm: EC,
  });
  return Buffer.from(c.rawData);
}

const pemOf = (der: Buffer): string => x509.PemConverter.encode(der, 'X509 CRL');

async function lastAudit(t: TestServer, subject: string, outcome: 'refused' | 'success') {
  const a = await t.call('GET', `/v1/audit?subject=${subject}&limit=1000`);
  return a.body.entries.filter((e: { outcome: string }) => e.outcome === outcome).at(-1);
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A CRL distribution point on 127.0.0.1 serving whatever `served` holds. */
async function distributionPoint(): Promise<{ url: string; serve: (b: Buffer) => void; hits: () => number; close: () => Promise<void> }> {
  let served: Buffer = Buffer.alloc(0);
  let hits = 0;
  const server: Server = createServer((req, res) => {
    hits++;
    res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(served);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/maker.crl`,
    serve: (b) => void (served = b),
    hits: () => hits,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** Provisioning with the IDevID chain in the body and a signed single-use nonce (behind a TLS terminator). */
async function provisionByNonce(t: TestServer, d: Idevid) {
  const url = `${t.server.deviceUrl}/device/v1/provision`;
  const { nonce } = (await mtlsPost(`${url}/nonce`, {}, { ca: bundleOf(t) })).body;
  const nonceSignature = createSign('sha256').update(nonce).sign(d.idevid.key).toString('base64');
  return mtlsPost(`${url}/x509`, { csr: deviceKey().csrPem, idevidChainPem: d.idevidChainPem, nonce, nonceSignature }, { ca: bundleOf(t) });
}

const LIMITS = { perSourcePerMinute: 600, perSourceBurst: 200, perDevicePerMinute: 60, perDeviceBurst: 20, crlRefreshIntervalMs: 200, crlFetchTimeoutMs: 2000, crlMaxBytes: 1024 * 1024 };

async function enrollIn(t: TestServer, m: Maker, extra: Record<string, unknown> = {}) {
  const r = await t.call('POST', '/v1/enrollments', { body: { label: `robots of ${m.name}`, kind: 'group', attestation: 'x509', trustAnchorsPem: m.pem, ...extra } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.enrollment as { id: string; revocation: string; crlUrls: string[] };
}

describe.each(DIALECTS)('revocation of an outside manufacturer CA on %s', (dialect) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer(dialect, {
      config: {
        provisioning: LIMITS,
        // The distribution points of these tests listen on 127.0.0.1: allowlisted explicitly.
        webhooks: { allowPrivateDestinations: ['127.0.0.1/32'] },
      },
    });
  });
  afterAll(async () => t?.stop());

  const enroll = (m: Maker, extra: Record<string, unknown> = {}) => enrollIn(t, m, extra);

  test('fail: a device whose IDevID the manufacturer revoked (uploaded CRL) is refused with the reason audited; its sibling provisions', async () => {
    const m = await maker('Acme');
    const e = await enroll(m);
    expect(e.revocation).toBe('require');
    const [a, b] = [await idevid(m), await idevid(m)];
    // No CRL yet: fail closed.
    expect((await provisionX509(t, a)).body.code).toBe('PROVISIONING_REFUSED');
    expect((await lastAudit(t, `device:${a.id}`, 'refused')).detail.reason).toMatch(/revocation_unknown/);

    const up = await t.call('POST', `/v1/enrollments/${e.id}/crls`, { body: { crl: pemOf(await crl(m, { revoked: [a] })) } });
    expect(up.status, JSON.stringify(up.body)).toBe(201);
    expect(up.body).toMatchObject({ enrollmentId: e.id, entries: 1, source: 'upload', crlNumber: '1', stale: false });
    expect((await lastAudit(t, `enrollment:${e.id}`, 'success')).action).toBe('enrollment.crl.add');

    const ra = await provisionX509(t, a);
    expect(ra).toMatchObject({ status: 403, body: { code: 'PROVISIONING_REFUSED' } });
    expect((await lastAudit(t, `device:${a.id}`, 'refused')).detail.reason).toMatch(/revoked: certificate .* revoked \(keyCompromise\)/);
    expect((await t.call('GET', `/v1/devices/${a.id}`)).status).toBe(404); // nothing registered for a refused device

    const rb = await provisionX509(t, b);
    expect(rb.status, JSON.stringify((await lastAudit(t, `device:${b.id}`, 'refused'))?.detail)).toBe(200);
    expect((await lastAudit(t, `device:${b.id}`, 'success')).detail).toMatchObject({ revocation: 'good', enrollmentId: e.id });
  });

  test('fail: a stale CRL refuses provisioning (fail closed); best-effort admits without a CRL but still refuses a revoked one', async () => {
    const m = await maker('Stale');
    const e = await enroll(m);
    const d = await idevid(m);
    const up = await t.call('POST', `/v1/enrollments/${e.id}/crls`, { body: { crl: (await crl(m, { thisUpdate: new Date(Date.now() - 3_600_000), nextUpdate: new Date(Date.now() + 1500) })).toString('base64') } });
    expect(up.status, JSON.stringify(up.body)).toBe(201);
    await new Promise((r) => setTimeout(r, 2000));
    expect((await t.call('GET', `/v1/enrollments/${e.id}/crls`)).body.crls[0].stale).toBe(true);
    expect((await provisionX509(t, d)).body.code).toBe('PROVISIONING_REFUSED');
    expect((await lastAudit(t, `device:${d.id}`, 'refused')).detail.reason).toMatch(/revocation_unknown: .*stale/);

    const lax = await maker('Lax');
    const le = await enroll(lax, { revocation: 'best-effort' });
    const [x, y] = [await idevid(lax), await idevid(lax)];
    expect((await provisionX509(t, x)).status).toBe(200);
    expect((await lastAudit(t, `device:${x.id}`, 'success')).detail.revocation).toBe('unknown');
    expect((await t.call('POST', `/v1/enrollments/${le.id}/crls`, { body: { crl: pemOf(await crl(lax, { revoked: [y] })) } })).status).toBe(201);
    expect((await provisionX509(t, y)).body.code).toBe('PROVISIONING_REFUSED');
  });

  test('fail: a CRL signed by another key, garbage, a delta CRL and an older CRL are refused at upload and change nothing', async () => {
    const m = await maker('Forged');
    const e = await enroll(m);
    const forger = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as Keys;
    const forged = await t.call('POST', `/v1/enrollments/${e.id}/crls`, { body: { crl: pemOf(await crl(m, { signer: forger })) } });
    expect(forged).toMatchObject({ status: 400, body: { code: 'ENROLLMENT_CRL_INVALID' } });
    expect((await lastAudit(t, `enrollment:${e.id}`, 'refused')).detail.reason).toMatch(/authorityKeyIdentifier|signature/);
    expect((await t.call('POST', `/v1/enrollments/${e.id}/crls`, { body: { crl: Buffer.alloc(200, 0x30).toString('base64') } })).body.code).toBe('ENROLLMENT_CRL_INVALID');
    // RFC 5280 §5.2.4 deltaCRLIndicator: delta CRLs are refused.
    const delta = await crl(m, { extensions: [new x509.Extension('2.5.29.27', true, Buffer.from([0x02, 0x01, 0x01]))] });
    expect((await t.call('POST', `/v1/enrollments/${e.id}/crls`, { body: { crl: pemOf(delta) } })).body.code).toBe('ENROLLMENT_CRL_INVALID');
    expect((await lastAudit(t, `enrollment:${e.id}`, 'refused')).detail.reason).toMatch(/delta CRL/);
    expect((await t.call('GET', `/v1/enrollments/${e.id}/crls`)).body.crls).toEqual([]);

    const older = await crl(m, { thisUpdate: new Date(Date.now() - 7_200_000), number: 4 });
    expect((await t.call('POST', `/v1/enrollments/${e.id}/crls`, { body: { crl: pemOf(await crl(m, { number: 5 })) } })).status).toBe(201);
    const replay = await t.call('POST', `/v1/enrollments/${e.id}/crls`, { body: { crl: pemOf(older) } });
    expect(replay).toMatchObject({ status: 409, body: { code: 'ENROLLMENT_CRL_OUTDATED' } });
    const list = (await t.call('GET', `/v1/enrollments/${e.id}/crls`)).body;
    expect(list).toMatchObject({ revocation: 'require', crls: [{ crlNumber: '5' }] });
    // Fleetkey's own manufacturing CA takes no CRL policy; non-X.509 enrollments keep no CRLs.
    expect((await t.call('POST', '/v1/enrollments', { body: { label: 'own', kind: 'group', attestation: 'x509', revocation: 'require' } })).body.code).toBe('ENROLLMENT_INVALID');
    const own = await t.call('POST', '/v1/enrollments', { body: { label: 'own', kind: 'group', attestation: 'x509' } });
    expect(own.body.enrollment.revocation).toBe('none');
    expect((await t.call('POST', `/v1/enrollments/${own.body.enrollment.id}/crls`, { body: { crl: pemOf(await crl(m)) } })).body.code).toBe('ENROLLMENT_CRL_INVALID');
  });

  test("a manufacturer's issuing CA (chain sent with a signed nonce): its CRL is uploaded with its certificate (validated up to the anchor); the device it revoked is refused; the root's CRL covers the issuing CA", async () => {
    const root = await maker('Tiered');
    const ica = await issuingCa(root, 'Tiered');
    const e = await enroll(root);
    const [a, b] = [await idevid(ica, undefined, ica.pem), await idevid(ica, undefined, ica.pem)];
    const add = (crlDer: Buffer, issuerPem?: string) => t.call('POST', `/v1/enrollments/${e.id}/crls`, { body: { crl: pemOf(crlDer), ...(issuerPem === undefined ? {} : { issuerPem }) } });
    // Without its certificate, the issuing CA's CRL cannot be verified against the anchor.
    expect((await add(await crl(ica, { revoked: [a] }))).body.code).toBe('ENROLLMENT_CRL_INVALID');
    // An "issuing CA" that does not chain to the anchor is refused.
    const stray = await maker('Tiered');
    expect((await add(await crl(stray), stray.pem)).body.code).toBe('ENROLLMENT_CRL_INVALID');
    expect((await add(await crl(root))).status).toBe(201);
    // Only the root's CRL: the leaf's status is unknown, fail closed.
    expect((await provisionByNonce(t, b)).body.code).toBe('PROVISIONING_REFUSED');
    const why = (await lastAudit(t, `device:${b.id}`, 'refused')).detail.reason;
    expect(why, why).toMatch(/revocation_unknown: no usable CRL for certificate .* at depth 0/);
    const up = await add(await crl(ica, { revoked: [a] }), ica.pem);
    expect(up.status, JSON.stringify(up.body)).toBe(201);
    expect(up.body.issuer).toContain('Issuing CA');
    expect((await provisionByNonce(t, a)).body.code).toBe('PROVISIONING_REFUSED');
    expect((await lastAudit(t, `device:${a.id}`, 'refused')).detail.reason).toMatch(/revoked \(keyCompromise\)/);
    expect((await provisionByNonce(t, b)).status).toBe(200);
    // The manufacturer revokes its issuing CA: every device below it is refused.
    const c = await idevid(ica, undefined, ica.pem);
    expect((await add(await crl(root, { revoked: [{ serial: '02' } as Idevid] }))).status).toBe(201);
    expect((await provisionByNonce(t, c)).body.code).toBe('PROVISIONING_REFUSED');
    expect((await lastAudit(t, `device:${c.id}`, 'refused')).detail.reason).toMatch(/revoked: certificate 02 at depth 1/);
  });

  test("a manufacturer's issuing CA over mTLS (root → issuing CA → IDevID, the device sends leaf + issuing CA in its handshake): provisions, and the device the issuing CA revoked is refused", async () => {
    const root = await maker('Tiered mTLS');
    const ica = await issuingCa(root, 'Tiered mTLS');
    const e = await enroll(root);
    const [a, b] = [await idevid(ica, undefined, ica.pem), await idevid(ica, undefined, ica.pem)];
    expect((await t.call('POST', `/v1/enrollments/${e.id}/crls`, { body: { crl: pemOf(await crl(root)) } })).status).toBe(201);
    const up = await t.call('POST', `/v1/enrollments/${e.id}/crls`, { body: { crl: pemOf(await crl(ica, { revoked: [a] })), issuerPem: ica.pem } });
    expect(up.status, JSON.stringify(up.body)).toBe(201);
    const rb = await provisionX509(t, b);
    expect(rb.status, JSON.stringify((await lastAudit(t, `device:${b.id}`, 'refused'))?.detail)).toBe(200);
    expect((await lastAudit(t, `device:${b.id}`, 'success')).detail).toMatchObject({ possession: 'tls', revocation: 'good', enrollmentId: e.id });
    expect((await provisionX509(t, a)).body.code).toBe('PROVISIONING_REFUSED');
    expect((await lastAudit(t, `device:${a.id}`, 'refused')).detail.reason).toMatch(/revoked \(keyCompromise\)/);
    // Without the issuing CA in the handshake the leaf does not chain to the anchor.
    const c = await idevid(ica);
    expect((await provisionX509(t, c)).body.code).toBe('PROVISIONING_REFUSED');
  });

  test('a CRL fetched from the distribution point on 127.0.0.1 revokes one device; the refresher replaces it before its nextUpdate', async () => {
    const dp = await distributionPoint();
    try {
      const m = await maker('Fetched');
      const [a, b] = [await idevid(m, dp.url), await idevid(m, dp.url)];
      // Short-lived first CRL: due for refresh at once (second half of its validity).
      dp.serve(await crl(m, { revoked: [a], thisUpdate: new Date(Date.now() - 60_000), nextUpdate: new Date(Date.now() + 60_000) }));
      const e = await enroll(m, { crlUrls: [dp.url] });
      expect(e.crlUrls).toEqual([dp.url]);
      const first = await waitFor('the fetched CRL', async () => (await t.call('GET', `/v1/enrollments/${e.id}/crls`)).body.crls[0]);
      expect(first).toMatchObject({ source: 'fetch', url: dp.url, crlNumber: '1', entries: 1 });
      expect((await lastAudit(t, `enrollment:${e.id}`, 'success')).action).toBe('enrollment.crl.fetch');

      expect((await provisionX509(t, a)).body.code).toBe('PROVISIONING_REFUSED');
      expect((await lastAudit(t, `device:${a.id}`, 'refused')).detail.reason).toMatch(/revoked \(keyCompromise\)/);
      expect((await provisionX509(t, b)).status).toBe(200);

      // The manufacturer publishes a newer CRL that also revokes b; the refresher picks it up.
      dp.serve(await crl(m, { revoked: [a, b], thisUpdate: new Date(Date.now() - 1000), nextUpdate: new Date(Date.now() + DAY) }));
      await waitFor('the refreshed CRL', async () => {
        const c = (await t.call('GET', `/v1/enrollments/${e.id}/crls`)).body.crls;
        return c.length === 1 && c[0].crlNumber === '2' ? c[0] : undefined;
      });
      expect((await provisionX509(t, b)).body.code).toBe('PROVISIONING_REFUSED');
      // A fresh CRL is not fetched again and again.
      const hits = dp.hits();
      await new Promise((r) => setTimeout(r, 700));
      expect(dp.hits()).toBe(hits);
    } finally {
      await dp.close();
    }
  });
  test("fail: the server's own API as a CRL URL is refused although loopback is allowlisted", async () => {
    const m = await maker('Self');
    for (const u of [`${t.url}/v1/tokens`, `${t.server.deviceUrl.replace('https:', 'http:')}/device/v1/provision/nonce`]) {
      const r = await t.call('POST', '/v1/enrollments', { body: { label: 'self', kind: 'group', attestation: 'x509', trustAnchorsPem: m.pem, crlUrls: [u] } });
      expect(r, u).toMatchObject({ status: 400, body: { code: 'ENROLLMENT_CRL_URL_REFUSED' } });
    }
  });
});

/*
 * A CRL URL is a request the server makes on an operator's (or an outside CA's) say-so: it goes
 * through the same destination policy as webhooks, so it cannot reach the metadata service, the
 * internal network or the server itself. No packet leaves 127.0.0.0/8: refusals are decided
 * before any connect, names resolve in-process.
 */
describe('CRL fetches reach no internal address (server-side request forgery)', () => {
  let t: TestServer;
  let dp: Awaited<ReturnType<typeof distributionPoint>>;
  const dns = fakeDns({ 'public.fleet.test': [['93.184.215.14']], 'internal.fleet.test': [['10.1.2.3']], 'rebind.fleet.test': [['93.184.215.14'], ['127.0.0.1']] });
  beforeAll(async () => {
    dp = await distributionPoint();
    t = await startTestServer('sqlite', {
      config: { provisioning: LIMITS },
      resolveHost: dns,
    });
  });
  afterAll(async () => {
    await t?.stop();
    await dp?.close();
  });

  test('fail: an enrollment whose CRL URL is loopback, the server itself, the metadata service or a private network is refused and nothing is created', async () => {
    const m = await maker('Inside');
    // Loopback first: on a server without the check these are the only ones ever fetched.
    const urls = [
      dp.url,
      `http://localhost:${new URL(dp.url).port}/maker.crl`,
      `${t.url}/v1/tokens`,
      'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
      'http://[::ffff:169.254.169.254]/latest/meta-data/',
      'http://10.0.0.1/maker.crl',
      'http://[fd00::1]/maker.crl',
      'http://internal.fleet.test/maker.crl',
      'http://0x7f.1/maker.crl',
      'http://nowhere.fleet.test/maker.crl',
    ];
    for (const u of urls) {
      const r = await t.call('POST', '/v1/enrollments', { body: { label: 'inside', kind: 'group', attestation: 'x509', trustAnchorsPem: m.pem, crlUrls: [u] } });
      expect(r, u).toMatchObject({ status: 400, body: { code: 'ENROLLMENT_CRL_URL_REFUSED' } });
    }
    expect((await t.call('GET', '/v1/enrollments')).body.enrollments).toHaveLength(0);
    expect((await t.call('GET', '/v1/audit?action=enrollment.create&limit=100')).body.entries.every((e: { outcome: string }) => e.outcome !== 'success')).toBe(true);
    // A public one is accepted (plain http: CRLs are signed, RFC 5280 §4.2.1.13); policy `none`
    // keeps the refresher from fetching it, so no packet leaves this machine.
    expect((await enrollIn(t, m, { revocation: 'none', crlUrls: ['http://public.fleet.test/maker.crl'] })).crlUrls).toEqual(['http://public.fleet.test/maker.crl']);
    await new Promise((r) => setTimeout(r, 300));
    expect(dp.hits()).toBe(0);
  });

  test("fail: an anchor's own distribution point on loopback, or a name that re-resolves to loopback, is never fetched; provisioning fails closed", async () => {
    const m = await maker('Anchor DP', dp.url);
    dp.serve(await crl(m));
    const e = await enrollIn(t, m);
    await new Promise((r) => setTimeout(r, 600));
    expect(dp.hits()).toBe(0);
    // Public when the enrollment is created, loopback when the refresher resolves it (DNS rebinding).
    const r = await enrollIn(t, await maker('Rebind'), { crlUrls: [`http://rebind.fleet.test:${new URL(dp.url).port}/maker.crl`] });
    expect(r.crlUrls).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 600));
    // Resolved again by the refresher (and refused), not skipped.
    expect(dns.calls.filter((h) => h === 'rebind.fleet.test').length).toBeGreaterThanOrEqual(2);
    expect(dp.hits()).toBe(0);
    expect((await t.call('GET', `/v1/enrollments/${e.id}/crls`)).body.crls).toEqual([]);
    expect((await t.call('GET', `/v1/enrollments/${r.id}/crls`)).body.crls).toEqual([]);
    const d = await idevid(m);
    expect((await provisionX509(t, d)).body.code).toBe('PROVISIONING_REFUSED');
  });
});

test('fail: no server code reads a client certificate with getPeerX509Certificate (it truncates the peer chain, nodejs/node#65579)', () => {
  const src = fileURLToPath(new URL('../../src', import.meta.url));
  const offenders = readdirSync(src, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .filter((f) => /\.getPeerX509Certificate\(/.test(readFileSync(join(src, f), 'utf8')));
  expect(offenders).toEqual([]);
});

describe('CRL fetch limits', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/big') {
        res.writeHead(200);
        for (let i = 0; i < 8; i++) res.write(Buffer.alloc(1024, 0x30));
        res.end();
      } else if (req.url === '/trickle') {
        // Headers at once, then one byte every 100 ms: the time budget covers the body too.
        res.writeHead(200);
        const timer = setInterval(() => res.write('0'), 100);
        res.on('close', () => clearInterval(timer));
      } else if (req.url === '/redirect') res.writeHead(302, { location: '/big' }).end();
      else if (req.url === '/missing') res.writeHead(404).end();
      // '/slow' never answers.
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  test('fail: a body over the size limit, a server that never answers or trickles, a redirect, a 404, a non-http URL', async () => {
    const limits = { timeoutMs: 500, maxBytes: 4096 };
    // The test distribution point is on 127.0.0.1: allowlisted, as an operator would.
    const out = new OutboundDestinations({ allowInsecureHttp: false, allowPrivateDestinations: ['127.0.0.1/32'] });
    await expect(fetchCrl(`${base}/big`, limits, out)).rejects.toThrow(/more than 4096 bytes/);
    for (const slow of ['/slow', '/trickle']) {
      const started = Date.now();
      await expect(fetchCrl(`${base}${slow}`, limits, out)).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(3000);
    }
    await expect(fetchCrl(`${base}/redirect`, limits, out)).rejects.toThrow(/302/);
    await expect(fetchCrl(`${base}/missing`, limits, out)).rejects.toThrow(/404/);
    await expect(fetchCrl('file:///etc/passwd', limits, out)).rejects.toMatchObject({ code: 'ENROLLMENT_CRL_URL_REFUSED' });
    expect((await fetchCrl(`${base}/big`, { timeoutMs: 500, maxBytes: 8192 }, out)).length).toBe(8192);
    // Without the allowlist entry the same URL is refused before any connection.
    const strict = new OutboundDestinations({ allowInsecureHttp: false, allowPrivateDestinations: [] });
    await expect(fetchCrl(`${base}/big`, limits, strict)).rejects.toMatchObject({ code: 'ENROLLMENT_CRL_URL_REFUSED' });
  });
});
