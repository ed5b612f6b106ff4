import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BaseFetcher, Updater } from 'tuf-js';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { deviceKey } from '../support/pki.js';
import { bundleOf, manufactured, provisionX509 } from '../support/provision.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { deviceGet, initRepo, offlineKeys, publishRelease, rootFor, sha256, sign, type RepoKeys } from './support/repo.js';

// tuf-js tells "no newer root" from a DownloadHTTPError 404 (TUF 1.0 §5.3.3); its class is not re-exported.
const { DownloadHTTPError } = createRequire(import.meta.url)('tuf-js/dist/error.js') as { DownloadHTTPError: new (m: string, s: number) => Error };

/** tuf-js's fetcher over mTLS with the device's operational certificate. */
class MtlsFetcher extends BaseFetcher {
  constructor(private readonly tls: { ca: string; cert: string; key: string }) {
    super();
  }
  override fetch(url: string): Promise<ReadableStream<Uint8Array<ArrayBuffer>>> {
    return new Promise((resolve, reject) => {
      const req = request(url, { ...this.tls, agent: false }, (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new DownloadHTTPError(`HTTP ${res.statusCode} for ${url}`, res.statusCode ?? 0));
          return;
        }
        resolve(Readable.toWeb(res) as ReadableStream<Uint8Array<ArrayBuffer>>);
      });
      req.on('error', reject);
      req.end();
    });
  }
}

/**
 * Interop (issue 12): the reference JavaScript TUF client (tuf-js, the one npm relies on) fetches
 * our image repository and the director over the device plane's mTLS and verifies everything,
 * including a root rotation signed with an ECDSA P-256 and ed25519 keys.
 */
describe.each(DIALECTS)('tuf-js client against Fleetkey on %s', (dialect) => {
  let t: TestServer;
  let keys: RepoKeys;
  let online: Awaited<ReturnType<typeof initRepo>>;
  let dev: { id: string; name: string; cert: string; key: string };
  let other: { id: string; cert: string; key: string };
  const dir = mkdtempSync(join(tmpdir(), 'fk-tufjs-'));
  const content = randomBytes(300_000);

  const device = async () => {
    const m = await manufactured(t, 'robot-x');
    const op = deviceKey();
    const r = await provisionX509(t, m, op.csrPem);
    if (r.status !== 200) throw new Error(JSON.stringify(r.body));
    return { id: m.id, name: r.body.name as string, cert: r.body.chainPem as string, key: op.keyPem };
  };

  beforeAll(async () => {
    t = await startTestServer(dialect);
    keys = offlineKeys();
    online = await initRepo(t, keys);
    await t.call('POST', '/v1/enrollments', { body: { label: 'u', kind: 'group', attestation: 'x509', allocation: { type: 'template', template: 'robot-{id8}' } } });
    dev = await device();
    other = await device();
  }, 60_000);
  afterAll(async () => {
    await t?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const updater = (repo: 'repo' | 'director', d: { cert: string; key: string }, sub: string, trustedRoot: string) => {
    const metadataDir = join(dir, sub, repo);
    mkdirSync(metadataDir, { recursive: true });
    writeFileSync(join(metadataDir, 'root.json'), trustedRoot);
    return new Updater({
      metadataDir,
      metadataBaseUrl: `${t.server.deviceUrl}/device/v1/updates/${repo}/metadata`,
      targetDir: join(dir, sub, 'targets'),
      targetBaseUrl: `${t.server.deviceUrl}/device/v1/updates/repo/targets`,
      fetcher: new MtlsFetcher({ ca: bundleOf(t), cert: d.cert, key: d.key }),
    });
  };

  test('tuf-js refreshes the image repository, finds the release and downloads it, verified', async () => {
    const rel = await publishRelease(t, keys, { model: 'robot-x', version: '2.0.0', content });
    expect(rel.status).toBe(201);
    const root1 = (await t.call('GET', '/v1/updates/repo/metadata/1.root.json')).body;
    const u = updater('repo', dev, 'a', JSON.stringify(root1));
    await u.refresh();
    const info = await u.getTargetInfo('robot-x-2.0.0.bin');
    expect(info?.length).toBe(content.length);
    const path = await u.downloadTarget(info!, join(dir, 'a-file'));
    expect(sha256(readFileSync(path))).toBe(sha256(content));
  });

  test('tuf-js follows a root rotation (2 of 3 old + 2 of 3 new keys) and still verifies', async () => {
    const fresh = offlineKeys();
    const v2 = await sign(rootFor(online, 'image', { version: 2, rootSigners: fresh.root, targets: keys.targets }), [keys.root[0]!, keys.root[1]!, fresh.root[1]!, fresh.root[2]!]);
    expect((await t.call('POST', '/v1/updates/root', { body: { repo: 'image', root: v2 } })).status).toBe(201);
    const root1 = (await t.call('GET', '/v1/updates/repo/metadata/1.root.json')).body;
    const u = updater('repo', dev, 'b', JSON.stringify(root1));
    await u.refresh();
    expect(JSON.parse(readFileSync(join(dir, 'b', 'repo', 'root.json'), 'utf8')).signed.version).toBe(2);
    expect(await u.getTargetInfo('robot-x-2.0.0.bin')).toBeDefined();
  });

  test('director: tuf-js verifies the per-device targets; only the assigned device sees the release', async () => {
    const release = (await t.call('GET', '/v1/releases?model=robot-x')).body.releases[0];
    const a = await t.call('POST', '/v1/releases/assign', { body: { name: dev.name, releaseId: release.id } });
    expect(a.status).toBe(200);
    const droot = JSON.stringify((await t.call('GET', '/v1/updates/director/metadata/1.root.json')).body);
    const mine = updater('director', dev, 'c', droot);
    await mine.refresh();
    const info = await mine.getTargetInfo('robot-x-2.0.0.bin');
    expect(info?.custom).toMatchObject({ deviceId: dev.id, name: dev.name, releaseId: release.id, version: '2.0.0' });
    expect(info?.hashes['sha256']).toBe(release.sha256);
    // The other device's director documents list nothing, signed for it alone.
    const theirs = updater('director', other, 'd', droot);
    await theirs.refresh();
    expect(await theirs.getTargetInfo('robot-x-2.0.0.bin')).toBeUndefined();
  });

  test('a device cannot fetch another device\'s director documents, nor without a certificate', async () => {
    const ca = bundleOf(t);
    const ts = JSON.parse((await deviceGet(`${t.server.deviceUrl}/device/v1/updates/director/metadata/timestamp.json`, { ca, cert: dev.cert, key: dev.key })).body.toString());
    const v = ts.signed.meta['snapshot.json'].version as number;
    const targetsOfDev = JSON.parse((await deviceGet(`${t.server.deviceUrl}/device/v1/updates/director/metadata/${v}.targets.json`, { ca, cert: dev.cert, key: dev.key })).body.toString());
    expect(Object.keys(targetsOfDev.signed.targets)).toHaveLength(1);
    // The other device asking for the same file name gets its own document or 404, never dev's.
    const r = await deviceGet(`${t.server.deviceUrl}/device/v1/updates/director/metadata/${v}.targets.json`, { ca, cert: other.cert, key: other.key });
    if (r.status === 200) expect(Object.keys(JSON.parse(r.body.toString()).signed.targets)).toHaveLength(0);
    else expect(JSON.parse(r.body.toString()).code).toBe('NOT_FOUND');
    const anon = await deviceGet(`${t.server.deviceUrl}/device/v1/updates/director/metadata/timestamp.json`, { ca });
    expect(anon.status).toBe(401);
    expect(JSON.parse(anon.body.toString()).code).toBe('UNAUTHENTICATED');
  });

  test('hostile file names on the device plane are NOT_FOUND, never a file outside the store', async () => {
    const ca = bundleOf(t);
    const base = `${t.server.deviceUrl}/device/v1/updates`;
    for (const path of ['repo/targets/..%2F..%2Fmaster.key', `repo/targets/${'0'.repeat(64)}.x`, 'repo/metadata/0.root.json', 'repo/metadata/01.root.json', 'repo/metadata/1.root.json.bak', 'director/metadata/..%2Froot.json', 'repo/metadata/%00']) {
      const r = await deviceGet(`${base}/${path}`, { ca, cert: dev.cert, key: dev.key });
      expect([400, 404], path).toContain(r.status);
      expect(['NOT_FOUND', 'VALIDATION_FAILED', 'ROUTE_NOT_FOUND', 'BAD_REQUEST']).toContain(JSON.parse(r.body.toString()).code);
    }
  });

  test('targets download with HTTP Range: 206 with Content-Range, resume splices to the right hash, 416 past the end', async () => {
    const ca = bundleOf(t);
    const url = `${t.server.deviceUrl}/device/v1/updates/repo/targets/${sha256(content)}.robot-x-2.0.0.bin`;
    const head = await deviceGet(url, { ca, cert: dev.cert, key: dev.key, headers: { range: 'bytes=0-99999' } });
    expect(head.status).toBe(206);
    expect(head.headers['content-range']).toBe(`bytes 0-99999/${content.length}`);
    const etag = head.headers['etag'] as string;
    const rest = await deviceGet(url, { ca, cert: dev.cert, key: dev.key, headers: { range: 'bytes=100000-', 'if-range': etag } });
    expect(rest.status).toBe(206);
    expect(sha256(Buffer.concat([head.body, rest.body]))).toBe(sha256(content));
    // A stale validator: the whole file, not a splice of two versions (RFC 9110 §13.1.5).
    const stale = await deviceGet(url, { ca, cert: dev.cert, key: dev.key, headers: { range: 'bytes=100000-', 'if-range': '"other"' } });
    expect(stale.status).toBe(200);
    expect(stale.body.length).toBe(content.length);
    const past = await deviceGet(url, { ca, cert: dev.cert, key: dev.key, headers: { range: `bytes=${content.length}-` } });
    expect(past.status).toBe(416);
    expect(past.headers['content-range']).toBe(`bytes */${content.length}`);
    const noCert = await deviceGet(url, { ca });
    expect(noCert.status).toBe(401);
  });
});
