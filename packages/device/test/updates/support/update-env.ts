/**
 * A real Fleetkey server with its update repository and director, real devices (manufactured,
 * provisioned over mTLS), the real SDK updater, and reports over the real MQTT gateway. The
 * attack helpers drive the SERVER's repository into an attack state with the server's own
 * online keys (what a compromised server, mirror or database can serve) or with the operator's
 * offline keys (what a compromised key can sign), never by patching the client.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { metadataDocument, signMetadata, tufExpires, type TufSigner } from '@fleetkey/crypto';
import { TUF_SPEC_VERSION, type SnapshotSigned, type TargetsSigned, type TimestampSigned, type UpdateReport } from '@fleetkey/protocol';
import { DeviceUpdater, FileFloorStore, type AssignedUpdate, type FloorStore } from '../../../src/updates/index.js';
import { deviceKey } from '../../../../server/test/support/pki.js';
import { bundleOf, manufactured, provisionX509 } from '../../../../server/test/support/provision.js';
import { startTestServer, type TestServer } from '../../../../server/test/support/test-server.js';
import type { TestDialect } from '../../../../server/test/support/databases.js';
import { initRepo, offlineKeys, sha256, sign, uploadArtifact, type RepoKeys } from '../../../../server/test/updates/support/repo.js';

export interface TestDevice {
  readonly id: string;
  readonly name: string;
  readonly cert: string;
  readonly key: string;
}

export interface UpdateEnv {
  readonly t: TestServer;
  readonly keys: RepoKeys;
  readonly ca: string;
  readonly scratch: string;
  device(model?: string): Promise<TestDevice>;
  release(o: { model: string; version: string; content: Buffer; minVersion?: string }): Promise<{ id: string; targetName: string; sha256: string }>;
  assign(name: string, releaseId: string): Promise<void>;
  /** The SDK updater of `d`, with its install hook and reports recorded. */
  updater(d: TestDevice, o?: { stateDir?: string; floor?: FloorStore; protector?: Buffer }): Promise<DeviceRun>;
  stop(): Promise<void>;
}

export interface DeviceRun {
  readonly updater: DeviceUpdater;
  readonly stateDir: string;
  readonly protector: Buffer;
  readonly installed: { file: string; update: AssignedUpdate; bytes: number }[];
  readonly reports: UpdateReport[];
  close(): Promise<void>;
}

export async function startUpdateEnv(dialect: TestDialect): Promise<UpdateEnv> {
  const t = await startTestServer(dialect, {
    logger: (await import('pino')).pino({ level: 'silent' }),
    config: { gateway: { enabled: true, host: '127.0.0.1', port: 0 } },
  });
  const keys = offlineKeys();
  await initRepo(t, keys);
  await t.call('POST', '/v1/enrollments', { body: { label: 'u', kind: 'group', attestation: 'x509', allocation: { type: 'template', template: 'robot-{id8}' } } });
  const ca = bundleOf(t);
  const scratch = mkdtempSync(join(tmpdir(), 'fk-upd-'));
  const clients: MqttClient[] = [];
  return {
    t,
    keys,
    ca,
    scratch,
    async device(model = 'robot-x') {
      const m = await manufactured(t, model);
      const op = deviceKey();
      const r = await provisionX509(t, m, op.csrPem);
      if (r.status !== 200) throw new Error(JSON.stringify(r.body));
      return { id: m.id, name: r.body.name as string, cert: r.body.chainPem as string, key: op.keyPem };
    },
    async release(o) {
      const up = await uploadArtifact(t, o.content);
      if (up.status !== 201) throw new Error(`upload: ${JSON.stringify(up.body)}`);
      const targetName = `${o.model}-${o.version}.bin`;
      const extra = o.minVersion === undefined ? {} : { minVersion: o.minVersion };
      const draft = await t.call('POST', '/v1/releases/draft', { body: { model: o.model, version: o.version, targetName, sha256: up.body.sha256, length: up.body.length, ...extra } });
      if (draft.status !== 200) throw new Error(`draft: ${JSON.stringify(draft.body)}`);
      const signed = await sign(draft.body.signed as TargetsSigned, [keys.targets]);
      const r = await t.call('POST', '/v1/releases', { body: { model: o.model, version: o.version, targetName, targets: signed, ...extra } });
      if (r.status !== 201) throw new Error(`release: ${JSON.stringify(r.body)}`);
      return { id: r.body.id as string, targetName, sha256: sha256(o.content) };
    },
    async assign(name, releaseId) {
      const r = await t.call('POST', '/v1/releases/assign', { body: { name, releaseId } });
      if (r.status >= 300) throw new Error(`assign: ${JSON.stringify(r.body)}`);
    },
    async updater(d, o = {}) {
      const stateDir = o.stateDir ?? mkdtempSync(join(scratch, 'dev-'));
      const protector = o.protector ?? randomBytes(32);
      const client = await mqtt.connectAsync(t.server.mqttUrl!, { clientId: d.id, key: d.key, cert: d.cert, ca, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 5000 }, false);
      clients.push(client);
      const installed: DeviceRun['installed'] = [];
      const reports: UpdateReport[] = [];
      const floor = o.floor ?? new FileFloorStore(stateDir, { kind: 'machine', secret: protector }, () => DeviceUpdater.hasTrustedMetadata(stateDir));
      const updater = new DeviceUpdater({
        deviceId: d.id,
        deviceUrl: t.server.deviceUrl,
        tls: { ca, cert: d.cert, key: d.key },
        stateDir,
        floor,
        install: async (file, update) => {
          const { size } = await import('node:fs/promises').then((f) => f.stat(file));
          installed.push({ file, update, bytes: size });
        },
        report: async (r) => {
          reports.push(r);
          // Bounded: a report must never hang a check (the SDK's own connection buffers instead).
          await Promise.race([client.publishAsync(`devices/${d.id}/update`, JSON.stringify(r), { qos: 1 }), new Promise((res) => setTimeout(res, 5000))]);
        },
      });
      return {
        updater,
        stateDir,
        protector,
        installed,
        reports,
        async close() {
          updater.close();
          await floor.close();
          await client.endAsync();
        },
      };
    },
    async stop() {
      for (const c of clients) await c.endAsync(true).catch(() => undefined);
      await t.stop();
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}

/** The server's online signer for one role (what its database and master key hold). */
export function onlineSigner(env: UpdateEnv, repo: 'image' | 'director', role: 'targets' | 'snapshot' | 'timestamp'): TufSigner {
  return env.t.server.updates.keys.get(repo, role).signer;
}

type Role = 'root' | 'targets' | 'snapshot' | 'timestamp';

export async function latestVersion(env: UpdateEnv, repo: 'image' | 'director', role: Role): Promise<number> {
  const r = await env.t.server.store.db.selectFrom('tuf_metadata').select((eb) => eb.fn.max('version').as('v')).where('repo', '=', repo).where('role', '=', role).executeTakeFirst();
  return Number(r?.v ?? 0);
}

/** Stores a metadata document as the server's next (or a chosen) version: served from then on. */
export async function putMetadata(env: UpdateEnv, repo: 'image' | 'director', role: Role, version: number, doc: unknown, expiresAt: number): Promise<void> {
  await env.t.server.store.db
    .insertInto('tuf_metadata')
    .values({ repo, role, version, body: metadataDocument(doc), expires_at: expiresAt, created_at: Date.now() })
    .execute();
  env.t.server.updates.reader.invalidate();
}

export async function dropMetadata(env: UpdateEnv, repo: 'image' | 'director', role: Role, version: number): Promise<string> {
  const db = env.t.server.store.db;
  const row = await db.selectFrom('tuf_metadata').selectAll().where('repo', '=', repo).where('role', '=', role).where('version', '=', version).executeTakeFirstOrThrow();
  await db.deleteFrom('tuf_metadata').where('repo', '=', repo).where('role', '=', role).where('version', '=', version).execute();
  env.t.server.updates.reader.invalidate();
  return row.body;
}

export async function restoreMetadata(env: UpdateEnv, repo: 'image' | 'director', role: Role, version: number, body: string): Promise<void> {
  await env.t.server.store.db.insertInto('tuf_metadata').values({ repo, role, version, body, expires_at: Date.now() + 86_400_000, created_at: Date.now() }).execute();
  env.t.server.updates.reader.invalidate();
}

/**
 * Signs and stores a new image snapshot (listing `targetsVersion`) and a new timestamp (listing it)
 * with the server's online keys; `timestampExpires` in the past makes a frozen timestamp.
 */
export async function resignImage(env: UpdateEnv, o: { targetsVersion: number; snapshotVersion?: number; timestampExpires?: number }): Promise<void> {
  const day = Date.now() + 86_400_000;
  let snapVersion = o.snapshotVersion;
  if (snapVersion === undefined) {
    snapVersion = (await latestVersion(env, 'image', 'snapshot')) + 1;
    const snapshot: SnapshotSigned = { _type: 'snapshot', spec_version: TUF_SPEC_VERSION, version: snapVersion, expires: tufExpires(day), meta: { 'targets.json': { version: o.targetsVersion } } };
    await putMetadata(env, 'image', 'snapshot', snapVersion, await signMetadata(snapshot, [onlineSigner(env, 'image', 'snapshot')]), day);
  }
  const tsVersion = (await latestVersion(env, 'image', 'timestamp')) + 1;
  const tsExpires = o.timestampExpires ?? day;
  const timestamp: TimestampSigned = { _type: 'timestamp', spec_version: TUF_SPEC_VERSION, version: tsVersion, expires: tufExpires(tsExpires), meta: { 'snapshot.json': { version: snapVersion } } };
  await putMetadata(env, 'image', 'timestamp', tsVersion, await signMetadata(timestamp, [onlineSigner(env, 'image', 'timestamp')]), tsExpires);
}

/** Replaces one device's director documents with targets of our making, signed with the director's online keys. */
export async function forgeDirector(env: UpdateEnv, deviceId: string, targets: (counter: number) => TargetsSigned['targets']): Promise<void> {
  const db = env.t.server.store.db;
  const row = await db.selectFrom('director_devices').selectAll().where('device_id', '=', deviceId).executeTakeFirstOrThrow();
  const counter = row.counter + 1;
  // Far from expiry so the director serves these documents instead of re-signing its own.
  const expiresAt = Date.now() + 365 * 86_400_000;
  const expires = tufExpires(expiresAt);
  const t: TargetsSigned = { _type: 'targets', spec_version: TUF_SPEC_VERSION, version: counter, expires, targets: targets(counter) };
  const s: SnapshotSigned = { _type: 'snapshot', spec_version: TUF_SPEC_VERSION, version: counter, expires, meta: { 'targets.json': { version: counter } } };
  const ts: TimestampSigned = { _type: 'timestamp', spec_version: TUF_SPEC_VERSION, version: counter, expires, meta: { 'snapshot.json': { version: counter } } };
  await db
    .updateTable('director_devices')
    .set({
      counter,
      targets_body: metadataDocument(await signMetadata(t, [onlineSigner(env, 'director', 'targets')])),
      snapshot_body: metadataDocument(await signMetadata(s, [onlineSigner(env, 'director', 'snapshot')])),
      timestamp_body: metadataDocument(await signMetadata(ts, [onlineSigner(env, 'director', 'timestamp')])),
      expires_at: expiresAt,
      signed_at: Date.now(),
    })
    .where('device_id', '=', deviceId)
    .execute();
}

/** What the server recorded for a device: its reports and installed version (the contract's truth). */
export async function serverView(env: UpdateEnv, deviceId: string): Promise<{ reports: { phase: string; code: string | null; release_id: string }[]; installedVersion: string | null }> {
  const db = env.t.server.store.db;
  const reports = await db.selectFrom('device_update_reports').select(['phase', 'code', 'release_id']).where('device_id', '=', deviceId).orderBy('received_at').orderBy('id').execute();
  const d = await env.t.call('GET', `/v1/devices/${deviceId}`);
  return { reports, installedVersion: d.body.installedVersion as string | null };
}

export async function until<T>(f: () => Promise<T | undefined>, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The stored image targets document of one version. */
export async function targetsDoc(env: UpdateEnv, version: number): Promise<{ signatures: unknown[]; signed: TargetsSigned }> {
  const row = await env.t.server.store.db.selectFrom('tuf_metadata').select('body').where('repo', '=', 'image').where('role', '=', 'targets').where('version', '=', version).executeTakeFirstOrThrow();
  return JSON.parse(row.body) as { signatures: unknown[]; signed: TargetsSigned };
}

/**
 * Recovery after an attack on targets: the genuine targets of `from`, re-signed by the operator's
 * targets key as `version`, and a snapshot/timestamp naming them (TUF never goes back).
 */
export async function forwardTargets(env: UpdateEnv, version: number, from: number): Promise<void> {
  const doc = await targetsDoc(env, from);
  const signed = await sign({ ...doc.signed, version }, [env.keys.targets]);
  await putMetadata(env, 'image', 'targets', version, signed, Date.parse(doc.signed.expires));
  await resignImage(env, { targetsVersion: version });
}
