import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { generateTufKeyPair, softwareTufSigner } from '@fleetkey/crypto';
import type { TargetsSigned } from '@fleetkey/protocol';
import { DIALECTS } from '../support/databases.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { initRepo, offlineKeys, publishRelease, rootFor, sha256, sign, uploadArtifact, type RepoKeys } from './support/repo.js';

/**
 * Server-side attacks on the update repository (issue 12): every refusal has its catalogue code
 * and changes nothing (the repository's targets version and the releases stay as they were).
 */
describe.each(DIALECTS)('update repository attacks on %s', (dialect) => {
  let t: TestServer;
  let keys: RepoKeys;
  let online: Awaited<ReturnType<typeof initRepo>>;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    t = await startTestServer(dialect, { logger: (await import('pino')).pino({ level: 'error' }) });
    keys = offlineKeys();
    online = await initRepo(t, keys);
    for (const role of ['viewer', 'operator'] as const) tokens[role] = (await t.call('POST', '/v1/tokens', { body: { role } })).body.secret;
  }, 60_000);
  afterAll(async () => t?.stop());

  const currentTargets = async () => (await t.call('GET', '/v1/updates/repo/metadata/timestamp.json')).body.signed.meta['snapshot.json'].version as number;
  const releases = async () => (await t.call('GET', '/v1/releases')).body.releases.length as number;

  test('a release signed by an unknown key is refused (REPO_SIGNATURE_THRESHOLD), nothing stored', async () => {
    const before = { snap: await currentTargets(), n: await releases() };
    const stranger = softwareTufSigner(generateTufKeyPair('ed25519').privateKey);
    const r = await publishRelease(t, keys, { model: 'm1', version: '1.0.0', content: randomBytes(1000), signers: [stranger] });
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('REPO_SIGNATURE_THRESHOLD');
    expect({ snap: await currentTargets(), n: await releases() }).toEqual(before);
  });

  test('targets signed by a root key (not a targets key) are refused', async () => {
    const r = await publishRelease(t, keys, { model: 'm1', version: '1.0.1', content: randomBytes(1000), signers: [keys.root[0]!] });
    expect(r.body.code).toBe('REPO_SIGNATURE_THRESHOLD');
  });

  test('a release signed by the targets key is admitted; snapshot and timestamp re-signed', async () => {
    const before = await currentTargets();
    const r = await publishRelease(t, keys, { model: 'm1', version: '1.1.0', content: randomBytes(5000) });
    expect(r.status).toBe(201);
    expect(r.body.signedBy).toEqual([keys.targets.keyId]);
    expect(await currentTargets()).toBe(before + 1);
  });

  test('two releases racing for the same targets version: one admitted, the other refused with a code (never a 500)', async () => {
    const prepared = [];
    for (const v of ['5.0.0', '5.0.1']) {
      const up = await uploadArtifact(t, randomBytes(100));
      const draft = await t.call('POST', '/v1/releases/draft', { body: { model: 'race', version: v, targetName: `race-${v}.bin`, sha256: up.body.sha256, length: up.body.length } });
      prepared.push({ model: 'race', version: v, targetName: `race-${v}.bin`, targets: await sign(draft.body.signed as TargetsSigned, [keys.targets]) });
    }
    const rs = await Promise.all(prepared.map((body) => t.call('POST', '/v1/releases', { body })));
    expect(rs.map((r) => r.status).sort()).toEqual([201, 409]);
    expect(['CONFLICT', 'REPO_VERSION_ROLLBACK']).toContain(rs.find((r) => r.status === 409)!.body.code);
  });

  test('targets metadata larger than the API\'s default body limit (64 KiB) is accepted on its routes', async () => {
    const up = await uploadArtifact(t, randomBytes(100));
    const draft = await t.call('POST', '/v1/releases/draft', { body: { model: 'm1', version: '1.1.5', targetName: 'm1-1.1.5.bin', sha256: up.body.sha256, length: up.body.length } });
    const signed = draft.body.signed as TargetsSigned;
    signed.targets['m1-1.1.5.bin']!.custom = { ...signed.targets['m1-1.1.5.bin']!.custom, notes: 'n'.repeat(200_000) };
    const r = await t.call('POST', '/v1/releases', { body: { model: 'm1', version: '1.1.5', targetName: 'm1-1.1.5.bin', targets: await sign(signed, [keys.targets]) } });
    expect(r.status).toBe(201);
  });

  test('targets metadata with a version not above the current one is refused (rollback at upload)', async () => {
    const up = await uploadArtifact(t, randomBytes(300));
    const draft = await t.call('POST', '/v1/releases/draft', { body: { model: 'm1', version: '1.2.0', targetName: 'm1-1.2.0.bin', sha256: up.body.sha256, length: up.body.length } });
    const old = { ...(draft.body.signed as TargetsSigned), version: 1 };
    const r = await t.call('POST', '/v1/releases', { body: { model: 'm1', version: '1.2.0', targetName: 'm1-1.2.0.bin', targets: await sign(old, [keys.targets]) } });
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('REPO_VERSION_ROLLBACK');
  });

  test('a signature over other bytes than the signed part (tampered after signing) does not count', async () => {
    const up = await uploadArtifact(t, randomBytes(300));
    const draft = await t.call('POST', '/v1/releases/draft', { body: { model: 'm1', version: '1.3.0', targetName: 'm1-1.3.0.bin', sha256: up.body.sha256, length: up.body.length } });
    const doc = await sign(draft.body.signed as TargetsSigned, [keys.targets]);
    doc.signed.targets['m1-1.3.0.bin']!.length += 1;
    const r = await t.call('POST', '/v1/releases', { body: { model: 'm1', version: '1.3.0', targetName: 'm1-1.3.0.bin', targets: doc } });
    expect(r.body.code).toBe('REPO_SIGNATURE_THRESHOLD');
  });

  test('targets listing an artifact that was never uploaded (or with another length) are refused', async () => {
    const fake = randomBytes(64);
    const draft = await t.call('POST', '/v1/releases/draft', { body: { model: 'm1', version: '1.4.0', targetName: 'm1-1.4.0.bin', sha256: sha256(fake), length: 64 } });
    const r = await t.call('POST', '/v1/releases', { body: { model: 'm1', version: '1.4.0', targetName: 'm1-1.4.0.bin', targets: await sign(draft.body.signed as TargetsSigned, [keys.targets]) } });
    expect(r.body.code).toBe('REPO_ARTIFACT_MISSING');
  });

  test('an artifact longer than its declared length is refused at upload, nothing stored', async () => {
    const body = randomBytes(4096);
    const r = await uploadArtifact(t, body, 1000);
    expect(r.status).toBe(413);
    expect(r.body.code).toBe('REPO_ARTIFACT_TOO_LARGE');
    expect((await t.call('GET', `/v1/updates/repo/targets/${sha256(body)}.x.bin`)).status).toBe(404);
    const short = await uploadArtifact(t, randomBytes(10), 10);
    expect(short.status).toBe(201);
    // A body shorter than declared, or not octet-stream, is not stored either.
    expect((await uploadArtifact(t, randomBytes(10), 11)).body.code).toBe('REPO_ARTIFACT_MISMATCH');
    const json = await t.call('POST', '/v1/updates/artifacts?length=2', { body: {} });
    expect(json.body.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  test('a chunked upload (no Content-Length) is cut one byte past its declared length while streaming', async () => {
    const body = randomBytes(256 * 1024);
    const r = await new Promise<{ status: number; body: any }>((resolve, reject) => {
      const req = httpRequest(`${t.url}/v1/updates/artifacts?length=1000`, { method: 'POST', headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      });
      // The server may close before the client finished writing: only an error before any answer counts.
      req.on('error', (e) => setTimeout(() => reject(e), 2000));
      // Written in small chunks: the server answers before the body ends (the rest is not read).
      for (let i = 0; i < body.length; i += 4096) req.write(body.subarray(i, i + 4096));
      req.end();
    });
    expect(r.status).toBe(413);
    expect(r.body.code).toBe('REPO_ARTIFACT_TOO_LARGE');
    expect((await t.call('GET', `/v1/updates/repo/targets/${sha256(body)}.x.bin`)).status).toBe(404);
  });

  test('malformed metadata bodies are refused with a catalogue code', async () => {
    const bad = [
      { signatures: [], signed: { _type: 'root' } },
      { signatures: [{ keyid: 'zz', sig: '00' }], signed: {} },
      'not-an-object',
    ];
    for (const body of bad) {
      const r = await t.call('POST', '/v1/updates/targets', { body });
      expect(r.status).toBe(400);
      expect(r.body.code).toBe('VALIDATION_FAILED');
    }
    // A root whose key id is not the hash of its key (one key counted twice under two ids).
    const root = rootFor(online, 'image', { version: 2, rootSigners: keys.root, targets: keys.targets });
    const [firstId] = Object.keys(root.keys);
    root.keys['0'.repeat(64)] = root.keys[firstId!]!;
    root.roles.root.keyids.push('0'.repeat(64));
    const r = await t.call('POST', '/v1/updates/root', { body: { repo: 'image', root: await sign(root, keys.root) } });
    expect(r.body.code).toBe('REPO_METADATA_INVALID');
  });

  test('viewer token cannot upload, create, assign or submit a root; operator cannot submit a root', async () => {
    expect((await uploadArtifact(t, randomBytes(10), 10, tokens['viewer'])).status).toBe(403);
    const r1 = await t.call('POST', '/v1/releases/draft', { token: tokens['viewer']!, body: { model: 'm', version: '1.0.0', targetName: 'x', sha256: '0'.repeat(64), length: 1 } });
    expect(r1.body.code).toBe('FORBIDDEN');
    const r2 = await t.call('POST', '/v1/releases/assign', { token: tokens['viewer']!, body: { name: 'nobody', releaseId: '00000000-0000-4000-8000-000000000000' } });
    expect(r2.body.code).toBe('FORBIDDEN');
    const root = await sign(rootFor(online, 'image', { version: 2, rootSigners: keys.root, targets: keys.targets }), keys.root);
    expect((await t.call('POST', '/v1/updates/root', { token: tokens['operator']!, body: { repo: 'image', root } })).body.code).toBe('FORBIDDEN');
    expect((await t.call('GET', '/v1/releases', { token: tokens['viewer']! })).status).toBe(200);
  });

  test('root rotation: a new root needs a threshold of the OLD root keys and of its own (TUF 1.0 §5.3.4-5)', async () => {
    const fresh = offlineKeys();
    // New keys only: the old root did not sign it.
    const onlyNew = await sign(rootFor(online, 'image', { version: 2, rootSigners: fresh.root, targets: keys.targets }), fresh.root.slice(0, 2));
    expect((await t.call('POST', '/v1/updates/root', { body: { repo: 'image', root: onlyNew } })).body.code).toBe('REPO_SIGNATURE_THRESHOLD');
    // One old key only (threshold 2), plus the new ones.
    const oneOld = await sign(rootFor(online, 'image', { version: 2, rootSigners: fresh.root, targets: keys.targets }), [keys.root[0]!, ...fresh.root.slice(0, 2)]);
    expect((await t.call('POST', '/v1/updates/root', { body: { repo: 'image', root: oneOld } })).body.code).toBe('REPO_SIGNATURE_THRESHOLD');
    // Old threshold but not the new keys' threshold.
    const oldOnly = await sign(rootFor(online, 'image', { version: 2, rootSigners: fresh.root, targets: keys.targets }), keys.root.slice(0, 2));
    expect((await t.call('POST', '/v1/updates/root', { body: { repo: 'image', root: oldOnly } })).body.code).toBe('REPO_SIGNATURE_THRESHOLD');
    // A skipped version.
    const v3 = await sign(rootFor(online, 'image', { version: 3, rootSigners: fresh.root, targets: keys.targets }), [...keys.root.slice(0, 2), ...fresh.root.slice(0, 2)]);
    expect((await t.call('POST', '/v1/updates/root', { body: { repo: 'image', root: v3 } })).body.code).toBe('REPO_METADATA_INVALID');
    // Both thresholds: accepted, then the same version again is a rollback.
    const good = await sign(rootFor(online, 'image', { version: 2, rootSigners: fresh.root, targets: keys.targets }), [keys.root[1]!, keys.root[2]!, ...fresh.root.slice(1, 3)]);
    expect((await t.call('POST', '/v1/updates/root', { body: { repo: 'image', root: good } })).status).toBe(201);
    expect((await t.call('POST', '/v1/updates/root', { body: { repo: 'image', root: good } })).body.code).toBe('REPO_VERSION_ROLLBACK');
    // The old root keys alone can no longer rotate (v3 by old keys only).
    const byOld = await sign(rootFor(online, 'image', { version: 3, rootSigners: keys.root, targets: keys.targets }), keys.root);
    expect((await t.call('POST', '/v1/updates/root', { body: { repo: 'image', root: byOld } })).body.code).toBe('REPO_SIGNATURE_THRESHOLD');
    expect((await t.call('GET', '/v1/updates/repo/metadata/2.root.json')).body.signed.version).toBe(2);
  });

  test('a root that does not list this server\'s online keys for snapshot/timestamp is refused', async () => {
    const other = softwareTufSigner(generateTufKeyPair('ed25519').privateKey);
    const root = rootFor({ ...online, director: { ...online.director, timestamp: { keyid: other.keyId, key: other.key } } }, 'director', { version: 2, rootSigners: keys.root, targets: keys.targets });
    const r = await t.call('POST', '/v1/updates/root', { body: { repo: 'director', root: await sign(root, keys.root) } });
    expect(r.body.code).toBe('REPO_METADATA_INVALID');
  });
});
