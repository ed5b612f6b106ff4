import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { adminApi, fleetkey, fleetkeyJson, serve } from './run-cli.js';

/**
 * Releases through the fleetkey binary (issue 12): keys made and metadata signed OFFLINE (no
 * server reachable), roots submitted with a threshold, a release created and assigned; a viewer
 * token refused. The air-gapped steps run with FLEETKEY_URL pointing nowhere.
 */
describe('fleetkey release and updates', () => {
  let cwd: string;
  let keys: string;
  let server: Awaited<ReturnType<typeof serve>>;
  const offline = { FLEETKEY_URL: 'http://127.0.0.1:1' };

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'fleetkey-rel-'));
    keys = mkdtempSync(join(tmpdir(), 'fleetkey-keys-'));
    server = await serve(cwd);
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(cwd, { recursive: true, force: true });
    rmSync(keys, { recursive: true, force: true });
  });

  test('offline: keygen writes 0600 keys and sign works without any server', async () => {
    for (const [k, type] of [['root2', 'ecdsa'], ['targets', 'ed25519']] as const) {
      const r = await fleetkeyJson(keys, ['release', 'keygen', '--out', k, '--type', type], offline);
      expect(r.keyid).toMatch(/^[0-9a-f]{64}$/);
      expect(statSync(join(keys, k)).mode & 0o777).toBe(0o600);
    }
    // The other root keys as an operator's own tooling would write them (PKCS#8 PEM, 0600).
    for (const k of ['root1', 'root3']) {
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      writeFileSync(join(keys, k), privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
      writeFileSync(join(keys, `${k}.pub`), publicKey.export({ format: 'pem', type: 'spki' }));
    }
    writeFileSync(join(keys, 'doc.json'), JSON.stringify({ signatures: [], signed: { _type: 'targets', version: 1 } }));
    const s = await fleetkeyJson(keys, ['release', 'sign', '--in', 'doc.json', '--out', 'doc.signed.json', '--key', 'root1', '--key', 'root2'], offline);
    expect(s.signatures).toHaveLength(2);
  });

  test('roots (2 of 3 root keys, one ECDSA) and the first targets, drafted online and signed offline', async () => {
    const env = { FLEETKEY_DATA_DIR: join(cwd, 'fleetkey-data'), FLEETKEY_URL: server.url };
    const rootKeys = ['root1', 'root2', 'root3'].flatMap((k) => ['--root-key', join(keys, `${k}.pub`)]);
    expect((await fleetkey(cwd, ['updates', 'root-draft', '--repo', 'image', '--version', '1', ...rootKeys, '--targets-key', join(keys, 'targets.pub'), '--out', join(keys, 'image-root.json')], env)).code).toBe(0);
    // One root key is not enough (threshold 2): refused with its code, exit 1.
    await fleetkeyJson(keys, ['release', 'sign', '--in', 'image-root.json', '--out', 'image-root.1.json', '--key', 'root2'], offline);
    const weak = await fleetkey(cwd, ['updates', 'submit-root', '--repo', 'image', '--file', join(keys, 'image-root.1.json')], env);
    expect(weak.code).toBe(1);
    expect(weak.stderr).toContain('REPO_SIGNATURE_THRESHOLD');
    await fleetkeyJson(keys, ['release', 'sign', '--in', 'image-root.1.json', '--out', 'image-root.2.json', '--key', 'root3'], offline);
    expect((await fleetkeyJson(cwd, ['updates', 'submit-root', '--repo', 'image', '--file', join(keys, 'image-root.2.json')], env)).version).toBe(1);
    await fleetkeyJson(cwd, ['updates', 'init-targets', '--key', join(keys, 'targets')], env);
  });

  test('a release signed with the customer key, another signed on an air-gapped machine, assigned to a name; a viewer is refused', async () => {
    const env = { FLEETKEY_DATA_DIR: join(cwd, 'fleetkey-data'), FLEETKEY_URL: server.url };
    const file = join(keys, 'firmware.img');
    const content = randomBytes(100_000);
    writeFileSync(file, content);
    const rel = await fleetkeyJson(cwd, ['release', 'create', '--file', file, '--version', '3.1.0', '--model', 'kr16', '--min-version', '3.0.0', '--key', join(keys, 'targets')], env);
    expect(rel).toMatchObject({ model: 'kr16', version: '3.1.0', minVersion: '3.0.0', length: content.length });
    // The signing step on another machine: draft out, sign offline, submit.
    const draft = join(keys, 'draft.json');
    await fleetkeyJson(cwd, ['release', 'create', '--file', file, '--version', '3.2.0', '--model', 'kr16', '--target-name', 'kr16-3.2.0.img', '--draft-out', draft], env);
    await fleetkeyJson(keys, ['release', 'sign', '--in', 'draft.json', '--out', 'draft.signed.json', '--key', 'targets'], offline);
    const rel2 = await fleetkeyJson(cwd, ['release', 'submit', '--signed', join(keys, 'draft.signed.json')], env);
    expect(rel2.version).toBe('3.2.0');

    const api = adminApi(() => server.url, () => cwd);
    const list = (await api('GET', '/v1/releases?model=kr16')).body;
    expect(list.releases.map((r: { version: string }) => r.version).sort()).toEqual(['3.1.0', '3.2.0']);
    await api('POST', '/v1/names', { name: 'line-03-cell-1' });
    const a = await fleetkeyJson(cwd, ['release', 'assign', '--name', 'line-03-cell-1', '--release', rel.id], env);
    expect(a).toMatchObject({ name: 'line-03-cell-1', releaseId: rel.id, source: 'operator' });

    const viewer = (await api('POST', '/v1/tokens', { role: 'viewer' })).body.secret as string;
    const denied = await fleetkey(cwd, ['release', 'assign', '--name', 'line-03-cell-1', '--release', rel.id], { ...env, FLEETKEY_TOKEN: viewer });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain('FORBIDDEN');
    expect(readFileSync(join(keys, 'targets'), 'utf8')).toContain('PRIVATE KEY');
  });
});
