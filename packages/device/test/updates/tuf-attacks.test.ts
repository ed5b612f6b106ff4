/**
 * Issue 12: the TUF/Uptane attacks, each on a real Fleetkey server (its image repository and
 * director, driven into the attack state with its own online keys or the operator's offline keys)
 * and the real SDK updater (tuf-js over mTLS). Every attack: refused with its stable code, the
 * install hook never runs, and the server receives a `failed` report with that code over MQTT.
 * Between attacks the device checks cleanly ('current'), so each attack starts from fresh trust.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { generateTufKeyPair, softwareTufSigner } from '@fleetkey/crypto';
import type { TargetsSigned } from '@fleetkey/protocol';
import { FLOOR_FILE } from '../../src/updates/index.js';
import { offlineKeys, rootFor, sign } from '../../../server/test/updates/support/repo.js';
import { dropMetadata, forgeDirector, forwardTargets, targetsDoc, latestVersion, putMetadata, resignImage, restoreMetadata, serverView, startUpdateEnv, until, type DeviceRun, type TestDevice, type UpdateEnv } from './support/update-env.js';

describe('TUF and Uptane attacks against the device updater (SQLite server, real SDK)', () => {
  let env: UpdateEnv;
  let a: TestDevice;
  let run: DeviceRun;
  let rel1: { id: string; targetName: string; sha256: string };
  let rel2: { id: string; targetName: string; sha256: string };
  const content1 = randomBytes(150_000);
  const content2 = randomBytes(180_000);

  beforeAll(async () => {
    env = await startUpdateEnv('sqlite');
    a = await env.device();
    run = await env.updater(a);
    rel1 = await env.release({ model: 'robot-x', version: '1.0.0', content: content1 });
    await env.assign(a.name, rel1.id);
  }, 60_000);
  afterAll(async () => {
    await run?.close();
    await env?.stop();
  });

  /** The attack outcome every test asserts: the code, nothing installed, and the server's failed report. */
  const refusedWith = async (r: DeviceRun, device: TestDevice, code: string, installedBefore: number) => {
    const out = await r.updater.check();
    expect(out.status === 'failed' ? out.code : out.status).toBe(code);
    expect(r.installed.length).toBe(installedBefore);
    await until(async () => ((await serverView(env, device.id)).reports.some((x) => x.phase === 'failed' && x.code === code) ? true : undefined));
  };
  const clean = async () => expect((await run.updater.check()).status).toBe('current');
  const artifact = (sha: string) => join(env.t.dataDir, 'updates', 'targets', sha);

  test('baseline: the assigned release is verified, installed once, reported, and visible in the registry', async () => {
    const out = await run.updater.check();
    expect(out.status).toBe('installed');
    expect(run.installed).toHaveLength(1);
    expect(run.installed[0]!.bytes).toBe(content1.length);
    expect(run.installed[0]!.update).toMatchObject({ releaseId: rel1.id, version: '1.0.0', sha256: rel1.sha256 });
    const view = await until(async () => {
      const v = await serverView(env, a.id);
      return v.installedVersion === '1.0.0' ? v : undefined;
    });
    expect(view.reports.map((r) => r.phase)).toEqual(expect.arrayContaining(['downloading', 'verifying', 'installing', 'installed']));
    const list = await env.t.call('GET', '/v1/devices?installedVersion=1.0.0');
    expect(list.body.devices.map((d: { id: string }) => d.id)).toEqual([a.id]);
    expect((await env.t.call('GET', '/v1/devices?installedVersion=9.9.9')).body.devices).toEqual([]);
    // A second check with the same assignment installs nothing.
    await clean();
    expect(run.installed).toHaveLength(1);
    rel2 = await env.release({ model: 'robot-x', version: '2.0.0', content: content2, minVersion: '2.0.0' });
    await clean();
  });

  test('rollback of timestamp: an older, validly signed timestamp is refused (UPDATE_ROLLBACK)', async () => {
    const v = await latestVersion(env, 'image', 'timestamp');
    const body = await dropMetadata(env, 'image', 'timestamp', v);
    try {
      await refusedWith(run, a, 'UPDATE_ROLLBACK', 1);
    } finally {
      await restoreMetadata(env, 'image', 'timestamp', v, body);
    }
    await clean();
  });

  test('rollback of snapshot: a new timestamp naming an older snapshot is refused (UPDATE_ROLLBACK)', async () => {
    const targets = await latestVersion(env, 'image', 'targets');
    const snap = await latestVersion(env, 'image', 'snapshot');
    await resignImage(env, { targetsVersion: targets, snapshotVersion: snap - 1 });
    await refusedWith(run, a, 'UPDATE_ROLLBACK', 1);
    await resignImage(env, { targetsVersion: targets });
    await clean();
  });

  test('rollback of targets: a new snapshot naming older targets is refused (UPDATE_ROLLBACK)', async () => {
    const targets = await latestVersion(env, 'image', 'targets');
    await resignImage(env, { targetsVersion: targets - 1 });
    await refusedWith(run, a, 'UPDATE_ROLLBACK', 1);
    await resignImage(env, { targetsVersion: targets });
    await clean();
  });

  test('freeze: an expired timestamp, even newly signed, is refused (UPDATE_FREEZE)', async () => {
    const targets = await latestVersion(env, 'image', 'targets');
    const snap = await latestVersion(env, 'image', 'snapshot');
    await resignImage(env, { targetsVersion: targets, snapshotVersion: snap, timestampExpires: Date.now() - 60_000 });
    await refusedWith(run, a, 'UPDATE_FREEZE', 1);
    await resignImage(env, { targetsVersion: targets });
    await clean();
  });

  test('mix-and-match: the targets the snapshot names are served with another, validly signed version inside (UPDATE_MIX_AND_MATCH)', async () => {
    const b = await env.device();
    await env.assign(b.name, rel1.id);
    const fresh = await env.updater(b);
    const targets = await latestVersion(env, 'image', 'targets');
    // `targets+1.targets.json` holds the genuine targets of version `targets`: each file is
    // correctly signed, but not the combination the snapshot vouches for.
    await putMetadata(env, 'image', 'targets', targets + 1, await targetsDoc(env, targets), Date.now() + 86_400_000);
    await resignImage(env, { targetsVersion: targets + 1 });
    try {
      await refusedWith(fresh, b, 'UPDATE_MIX_AND_MATCH', 0);
    } finally {
      await fresh.close();
      await forwardTargets(env, targets + 2, targets);
    }
    await clean();
  });

  test('a release signed by an unknown key, served with valid snapshot and timestamp, is refused (UPDATE_UNKNOWN_KEY)', async () => {
    const targets = await latestVersion(env, 'image', 'targets');
    const cur = await targetsDoc(env, targets);
    const stranger = softwareTufSigner(generateTufKeyPair('ed25519').privateKey);
    const forged = await sign({ ...cur.signed, version: targets + 1 }, [stranger]);
    await putMetadata(env, 'image', 'targets', targets + 1, forged, Date.now() + 86_400_000);
    await resignImage(env, { targetsVersion: targets + 1 });
    try {
      await refusedWith(run, a, 'UPDATE_UNKNOWN_KEY', 1);
    } finally {
      // The device now trusts a snapshot naming targets+1: the repository moves forward, never back.
      await forwardTargets(env, targets + 2, targets);
    }
    await clean();
  });

  test('a director document for another device, signed by the director, is refused (UPDATE_NOT_FOR_THIS_DEVICE)', async () => {
    const other = await env.device();
    await forgeDirector(env, a.id, (counter) => ({
      [rel1.targetName]: { length: content1.length, hashes: { sha256: rel1.sha256 }, custom: { deviceId: other.id, name: other.name, releaseId: rel1.id, version: '1.0.0', counter } },
    }));
    try {
      await refusedWith(run, a, 'UPDATE_NOT_FOR_THIS_DEVICE', 1);
    } finally {
      // release_id cleared: the director re-signs this device's documents on the next request.
      await env.t.server.store.db.updateTable('director_devices').set({ release_id: null }).where('device_id', '=', a.id).execute();
    }
    await clean();
  });

  test('director and image repository disagree on the target (UPDATE_DIRECTOR_MISMATCH)', async () => {
    await forgeDirector(env, a.id, (counter) => ({
      [rel1.targetName]: { length: content1.length, hashes: { sha256: rel2.sha256 }, custom: { deviceId: a.id, name: a.name, releaseId: rel1.id, version: '1.0.0', counter } },
    }));
    try {
      await refusedWith(run, a, 'UPDATE_DIRECTOR_MISMATCH', 1);
    } finally {
      await env.t.server.store.db.updateTable('director_devices').set({ release_id: null }).where('device_id', '=', a.id).execute();
    }
    await clean();
  });

  test('arbitrary software: the served file is not the signed one (UPDATE_HASH_MISMATCH)', async () => {
    await env.assign(a.name, rel2.id);
    writeFileSync(artifact(rel2.sha256), randomBytes(content2.length));
    try {
      await refusedWith(run, a, 'UPDATE_HASH_MISMATCH', 1);
    } finally {
      writeFileSync(artifact(rel2.sha256), content2);
    }
  });

  test('endless data: the server streams past the signed length; the device stops at it (UPDATE_LENGTH_EXCEEDED)', async () => {
    appendFileSync(artifact(rel2.sha256), randomBytes(2 * 1024 * 1024));
    try {
      await refusedWith(run, a, 'UPDATE_LENGTH_EXCEEDED', 1);
    } finally {
      writeFileSync(artifact(rel2.sha256), content2);
    }
  });

  test('after the attacks the genuine 2.0.0 installs (resumed download state discarded), raising the floor to its min version', async () => {
    const out = await run.updater.check();
    expect(out.status).toBe('installed');
    expect(run.installed).toHaveLength(2);
    expect(run.installed[1]!.update).toMatchObject({ version: '2.0.0', minVersion: '2.0.0' });
    await until(async () => ((await serverView(env, a.id)).installedVersion === '2.0.0' ? true : undefined));
  });

  test('downgrade below the floor: 1.0.0, signed by the repository and assigned by the director, is refused (UPDATE_BELOW_FLOOR)', async () => {
    await env.assign(a.name, rel1.id);
    await refusedWith(run, a, 'UPDATE_BELOW_FLOOR', 2);
    expect((await serverView(env, a.id)).installedVersion).toBe('2.0.0');
  });

  test('a tampered or deleted floor file fails closed (UPDATE_FLOOR_INVALID)', async () => {
    const path = join(run.stateDir, FLOOR_FILE);
    const good = readFileSync(path);
    const bad = Buffer.from(good);
    bad[bad.length - 5]! ^= 0x01;
    writeFileSync(path, bad, { mode: 0o600 });
    await refusedWith(run, a, 'UPDATE_FLOOR_INVALID', 2);
    rmSync(path);
    expect(await run.updater.check()).toMatchObject({ status: 'failed', code: 'UPDATE_FLOOR_INVALID' });
    expect(run.installed).toHaveLength(2);
    writeFileSync(path, good, { mode: 0o600 });
  });

  test('a malformed update report is refused by the gateway and stores nothing', async () => {
    const mqtt = (await import('mqtt')).default;
    const d = await env.device();
    const c = await mqtt.connectAsync(env.t.server.mqttUrl!, { clientId: d.id, key: d.key, cert: d.cert, ca: env.ca, protocolVersion: 5, reconnectPeriod: 0 }, false);
    const before = (await serverView(env, d.id)).reports.length;
    for (const body of ['{"releaseId":"r","version":"1.0.0","phase":"failed"}', '{"releaseId":"r","version":"one","phase":"installed"}', '{"releaseId":"r","version":"1.0.0","phase":"installed","code":"NOT_A_CODE"}', 'nope']) {
      // v5 QoS 1 refusal: PUBACK 0x99 Payload format invalid [MQTT-3.4.2.1], the session kept.
      await expect(c.publishAsync(`devices/${d.id}/update`, body, { qos: 1 })).rejects.toMatchObject({ code: 0x99 });
    }
    // And a device may report only about itself.
    await expect(c.publishAsync(`devices/${a.id}/update`, '{"releaseId":"r","version":"1.0.0","phase":"installed"}', { qos: 1 })).rejects.toMatchObject({ code: 0x87 });
    await c.endAsync();
    expect((await serverView(env, d.id)).reports.length).toBe(before);
    expect((await serverView(env, a.id)).installedVersion).toBe('2.0.0');
  });
  test('root rotation with the old root compromised: a root signed by the old keys only is refused (UPDATE_UNKNOWN_KEY)', async () => {
    await env.assign(a.name, rel2.id);
    const online = (await env.t.call('GET', '/v1/updates/online-keys')).body;
    const next = offlineKeys();
    const v = await latestVersion(env, 'image', 'root');
    // The operator rotates (old threshold + new threshold, TUF 1.0 §5.3.4); the device follows.
    const rotated = await sign(rootFor(online, 'image', { version: v + 1, rootSigners: next.root, targets: env.keys.targets }), [...env.keys.root.slice(0, 2), ...next.root.slice(0, 2)]);
    expect((await env.t.call('POST', '/v1/updates/root', { body: { repo: 'image', root: rotated } })).status).toBe(201);
    await clean();
    // The attacker holds the OLD root keys: a v+2 root listing them, signed by all of them.
    const evil = await sign(rootFor(online, 'image', { version: v + 2, rootSigners: env.keys.root, targets: env.keys.targets }), env.keys.root);
    await putMetadata(env, 'image', 'root', v + 2, evil, Date.now() + 86_400_000);
    // Last test: the server caches versioned documents, so the forged root stays served.
    await refusedWith(run, a, 'UPDATE_UNKNOWN_KEY', 2);
  });
});
