import { join } from 'node:path';
import { buildCrl, importRootKey, SoftwareSigner, toPem } from '@fleetkey/crypto';
import { systemContext } from '@fleetkey/server';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { deviceKey, openssl } from '../support/pki.js';
import { provisionX509 } from '../support/provision.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const DAY = 86_400_000;

/**
 * What has to outlast long offline periods: a robot's birth certificate while the robot sits in a
 * warehouse (IEEE 802.1AR: an IDevID lives as long as the device), and the root CRL while the root
 * key sits in a safe (pre-signed, served from the store, re-signed only by an explicit step).
 */
describe.each(DIALECTS)('offline lifetimes on %s', (dialect) => {
  let t: TestServer;
  let offset = 0; // how far the server's clock runs ahead of the real one
  let rootId: string;
  let rootPem: string;
  let offline: SoftwareSigner | undefined; // the root key as exported, held by the operator
  const sign = async (crlNumber: bigint, from: number, to: number) =>
    toPem(await buildCrl({ issuerCertificate: rootPem, signer: offline!, thisUpdate: new Date(from), nextUpdate: new Date(to), crlNumber, entries: [] }), 'X509 CRL');
  const rootCrl = async () => {
    const res = await fetch(`${t.url}/pki/crl/${rootId}.crl`);
    expect(res.status).toBe(200);
    const der = Buffer.from(await res.arrayBuffer());
    const text = (await openssl((d) => ['crl', '-inform', 'DER', '-in', join(d, 'c.crl'), '-CAfile', join(d, 'root.pem'), '-noout', '-text'], { 'c.crl': der, 'root.pem': rootPem })).out;
    expect(text).toContain('verify OK');
    return {
      number: Number(/X509v3 CRL Number:\s*\n\s*(\d+)/.exec(text)?.[1]),
      nextUpdate: Date.parse(/Next Update: (.+)/.exec(text)?.[1] ?? ''),
    };
  };
  beforeAll(async () => {
    t = await startTestServer(dialect, { clock: { now: () => Date.now() + offset } });
    const root = (await t.call('GET', '/v1/ca')).body.authorities.find((a: { role: string }) => a.role === 'root');
    rootId = root.id;
    rootPem = root.certificatePem;
  });
  afterAll(async () => {
    await offline?.close();
    await t?.stop();
  });

  test('fail: a robot stored 400 days after manufacture still provisions with its default birth certificate (notAfter 99991231235959Z)', async () => {
    const g = await t.call('POST', '/v1/enrollments', { body: { label: 'stored robots', kind: 'group', attestation: 'x509', allocation: { type: 'pending' } } });
    expect(g.status).toBe(201);
    const id = (await t.call('POST', '/v1/devices', { body: {} })).body.id as string;
    const idevid = deviceKey();
    // As `fleetkey manufacture` asks by default: no validity given for a birth certificate.
    const r = await t.call('POST', '/v1/certificates', { body: { deviceId: id, csr: idevid.csrPem, kind: 'idevid' } });
    expect(r.status).toBe(201);
    expect(r.body.certificate.notAfter).toBe('9999-12-31T23:59:59.000Z');
    offset = 400 * DAY;
    try {
      const p = await provisionX509(t, { idevid, idevidChainPem: r.body.chainPem });
      expect(p.status, JSON.stringify(p.body)).toBe(200);
      expect(p.body.deviceId).toBe(id);
    } finally {
      offset = 0;
    }
  });

  test('fail: an operational certificate cannot be given an unlimited lifetime', async () => {
    const id = (await t.call('POST', '/v1/devices', { body: {} })).body.id as string;
    const r = await t.call('POST', '/v1/certificates', { body: { deviceId: id, csr: deviceKey().csrPem, validity: 'unlimited' } });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('CERT_VALIDITY_INVALID');
  });

  test('a CA created before the root CRL existed gets one at start while its root key is on the server', async () => {
    // As a data dir from before this profile: no CRL row for the root, so nothing to serve.
    await t.server.store.db.deleteFrom('crls').where('issuer_id', '=', rootId).execute();
    expect((await fetch(`${t.url}/pki/crl/${rootId}.crl`)).status).toBe(404);
    await t.server.ca.authorities.ensureRootCrl(systemContext('test'));
    expect((await rootCrl()).nextUpdate - Date.now()).toBeGreaterThan(364 * DAY);
    const audit = await t.call('GET', `/v1/audit?subject=ca:${rootId}&limit=10`);
    expect(audit.body.entries.map((e: { action: string }) => e.action)).toContain('ca.root.crl');
  });

  test('the root CRL is pre-signed for a year, re-signed by an explicit step, and still served after the root key is removed', async () => {
    const first = await rootCrl();
    expect(first.nextUpdate - Date.now()).toBeGreaterThan(364 * DAY);
    // Only a CA administrator signs with the root key.
    const operator = (await t.call('POST', '/v1/tokens', { body: { role: 'operator', name: 'ops' } })).body.secret as string;
    expect((await t.call('POST', '/v1/ca/root/crl', { token: operator, body: {} })).status).toBe(403);
    expect(await rootCrl()).toEqual(first);
    const resigned = await t.call('POST', '/v1/ca/root/crl', { body: { validity: '730d' } });
    expect(resigned.status, JSON.stringify(resigned.body)).toBe(200);
    const second = await rootCrl();
    expect(second.number).toBeGreaterThan(first.number);
    expect(second.nextUpdate - Date.now()).toBeGreaterThan(729 * DAY);
    // A rotated issuing CA names the root's CRL and certificate, like the first ones.
    const rotated = await t.call('POST', '/v1/ca/rotate');
    expect(rotated.status).toBe(200);
    const issuing = (await t.call('GET', '/v1/ca')).body.authorities.find((a: { id: string }) => a.id === rotated.body.id);
    const ext = (await openssl((d) => ['x509', '-in', join(d, 'c.pem'), '-noout', '-ext', 'crlDistributionPoints,authorityInfoAccess'], { 'c.pem': issuing.certificatePem })).out;
    expect(ext).toContain(`/pki/crl/${rootId}.crl`);
    expect(ext).toContain(`CA Issuers - URI:${t.url}/pki/ca/${rootId}.crt`);

    const exported = await t.call('POST', '/v1/ca/root/export', { body: { passphrase: 'correct horse battery' } });
    expect(exported.status).toBe(200);
    expect((await t.call('POST', '/v1/ca/root/remove')).status).toBe(204);
    const refused = await t.call('POST', '/v1/ca/root/crl', { body: {} });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('CA_ROOT_OFFLINE');
    // Nothing changed: the pre-signed CRL is what is served.
    expect(await rootCrl()).toEqual(second);

    // Offline: the operator signs the next root CRL with the exported key; the server installs it.
    offline = new SoftwareSigner(await importRootKey(exported.body.armored, 'correct horse battery'));
    const now = Date.now();
    const next = await sign(BigInt(second.number + 1), now, now + 400 * DAY);
    const installed = await t.call('POST', '/v1/ca/root/crl', { body: { crlPem: next } });
    expect(installed.status, JSON.stringify(installed.body)).toBe(200);
    const third = await rootCrl();
    expect(third.number).toBe(second.number + 1);
    expect(third.nextUpdate - Date.now()).toBeGreaterThan(399 * DAY);
    expect(await (await fetch(`${t.url}/pki/crl/${rootId}.pem`)).text()).toBe(next);
  });

  test('fail: an offline root CRL that is replayed, stale, forged or not a CRL is refused and changes nothing', async () => {
    const served = await (await fetch(`${t.url}/pki/crl/${rootId}.pem`)).text();
    const current = await rootCrl();
    const exported = await t.call('POST', '/v1/ca/root/export', { body: { passphrase: 'correct horse battery' } });
    // The root key is gone from the server; the test still holds the key exported before (above).
    expect(exported.body.code).toBe('CA_ROOT_NOT_EXPORTABLE');
    const now = Date.now();
    const cases = [
      served, // replay of the CRL already served: its number does not grow
      await sign(BigInt(current.number + 1), now - 2 * DAY, now - DAY), // stale: nextUpdate passed
      'not a CRL, only text long enough to pass the schema',
      served.replace(/[A-Za-z0-9](?=\n-----END)/, (c) => (c === 'A' ? 'B' : 'A')), // signature bytes altered
    ];
    for (const crlPem of cases) {
      const r = await t.call('POST', '/v1/ca/root/crl', { body: { crlPem } });
      expect(r.status, crlPem.slice(0, 40)).toBe(400);
      expect(r.body.code).toBe('CRL_PARAMS_INVALID');
    }
    expect(await rootCrl()).toEqual(current);
  });
});
