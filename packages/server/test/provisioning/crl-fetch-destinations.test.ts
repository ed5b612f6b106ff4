/**
 * The CRL refresher fetches URLs an operator names (an enrollment's crlUrls, and the distribution
 * points of the anchors it uploads). Those fetches are outbound requests like webhooks (issue 11:
 * "outbound requests are safe"): an operator token must not make the server call loopback, the
 * cloud metadata service or other internal addresses, unless the range is allowlisted
 * (webhooks.allowPrivateDestinations), and never through a name that resolves inside.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

/** An outside manufacturer's root, made by OpenSSL. */
function outsideRoot(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fk-crl-ssrf-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '3650', '-subj', '/CN=Outside IDevID Root', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { stdio: 'ignore' });
    return readFileSync(join(dir, 'c.pem'), 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.each(DIALECTS)('CRL fetches reach no internal address (%s)', (dialect) => {
  let internal: Server;
  let port: number;
  const hits: string[] = [];
  let t: TestServer;
  let operator: string;

  beforeAll(async () => {
    // Stands for an internal service (an admin endpoint on loopback, a metadata service).
    internal = createServer((req, res) => {
      hits.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/pkix-crl' }).end('internal secret');
    });
    await new Promise<void>((r) => internal.listen(0, '127.0.0.1', r));
    port = (internal.address() as AddressInfo).port;
    t = await startTestServer(dialect, { config: { provisioning: { crlRefreshIntervalMs: 100, crlFetchTimeoutMs: 1000 } } });
    operator = (await t.call('POST', '/v1/tokens', { body: { role: 'operator', name: 'ops' } })).body.secret;
  });
  afterAll(async () => {
    await t?.stop();
    await new Promise((r) => internal?.close(r));
  });

  test('fail: an operator\'s enrollment CRL URLs on loopback (by address or by name) are never fetched', async () => {
    const crlUrls = [`http://127.0.0.1:${port}/admin/reset?all=1`, `http://localhost:${port}/latest/meta-data/`, `http://169.254.169.254/latest/meta-data/iam/`];
    const r = await t.call('POST', '/v1/enrollments', { token: operator, body: { label: 'outside robots', kind: 'group', attestation: 'x509', trustAnchorsPem: outsideRoot(), crlUrls } });
    // Refused now, or accepted and never fetched: either way nothing inside is called.
    if (r.status === 201) {
      await new Promise((res) => setTimeout(res, 1500)); // fifteen refresher ticks
      expect((await t.call('GET', `/v1/enrollments/${r.body.enrollment.id}/crls`)).body.crls).toEqual([]);
    } else {
      expect(r.status).toBe(400);
    }
    expect(hits).toEqual([]);
  });
});
