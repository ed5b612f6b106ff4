import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, loadConfig, type FleetkeyServer } from '@fleetkey/server';
import { createPgDatabase } from '../../support/databases.js';
import type { TestServer } from '../../support/test-server.js';
import { NatsChild } from './nats.js';

const ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));

/** Short timings so a test sees a node die in about a second. */
// The node timeout leaves room for event-loop stalls of a loaded 2-core machine (a node reaped while
// alive rejoins, but its devices' presence would flap).
export const CLUSTER_TIMING = { heartbeatMs: 250, nodeTimeoutMs: 3_000, storePollMs: 200 };
/** A low PUBLISH rate per device, so a test can spend a device's allowance in a few messages. */
export const CLUSTER_RATE = 10;

export interface ClusterNode {
  readonly id: string;
  /** The in-process server (undefined for a child-process node). */
  readonly server: FleetkeyServer | undefined;
  readonly child: ChildProcess | undefined;
  readonly url: string;
  readonly deviceUrl: string;
  readonly mqttUrl: string;
  /** This node as the shared test helpers (manufactured, provisionX509) expect a test server. */
  readonly t: TestServer;
  stop(): Promise<void>;
  /** kill -9 (child nodes only). */
  kill(): Promise<void>;
}

export interface TestCluster {
  readonly nats: NatsChild;
  readonly dataDir: string;
  readonly databaseUrl: string;
  readonly nodes: ClusterNode[];
  addNode(kind: 'inprocess' | 'child', id: string): Promise<ClusterNode>;
  stop(): Promise<void>;
}

/**
 * Nodes of one cluster on one PostgreSQL database and one NATS server (our own child). They share
 * the data dir as a deployment shares it (master key, CA keys, session keys): the first node
 * creates it, the others find it.
 */
export async function startCluster(kinds: ('inprocess' | 'child')[], timing: Partial<typeof CLUSTER_TIMING> = {}): Promise<TestCluster> {
  const nats = await NatsChild.start();
  const pg = await createPgDatabase();
  const dataDir = mkdtempSync(join(tmpdir(), 'fleetkey-cluster-'));
  const clusterCfg = { ...CLUSTER_TIMING, ...timing };
  const nodes: ClusterNode[] = [];

  const handle = (id: string, urls: { url: string; deviceUrl: string; mqttUrl: string }, server: FleetkeyServer | undefined, child: ChildProcess | undefined, stop: () => Promise<void>, kill: () => Promise<void>): ClusterNode => {
    const adminToken = () => readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    const call: TestServer['call'] = async (method, path, o = {}) => {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      const token = o.token === undefined ? adminToken() : o.token;
      if (token !== null) headers['authorization'] = `Bearer ${token}`;
      const body = o.raw ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
      if (body !== undefined && headers['content-type'] === undefined) headers['content-type'] = 'application/json';
      const res = await fetch(`${urls.url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
      const text = await res.text();
      return { status: res.status, body: text === '' ? null : JSON.parse(text), headers: res.headers };
    };
    const t = { server: { ...urls, deviceUrl: urls.deviceUrl, mqttUrl: urls.mqttUrl }, url: urls.url, dataDir, get adminToken() { return adminToken(); }, databaseUrl: pg.url, call, stop } as unknown as TestServer;
    return { id, server, child, ...urls, t, stop, kill };
  };

  const addNode = async (kind: 'inprocess' | 'child', id: string): Promise<ClusterNode> => {
    let node: ClusterNode;
    if (kind === 'inprocess') {
      const config = loadConfig({ env: { FLEETKEY_LOG_LEVEL: 'silent' }, overrides: { dataDir, port: 0, host: '127.0.0.1', databaseUrl: pg.url, clusterUrl: nats.url } });
      config.deviceHttp.port = 0;
      config.gateway.port = 0;
      config.cluster = { ...config.cluster, ...clusterCfg, nodeId: id };
      config.gateway.maxPublishesPerSecond = CLUSTER_RATE;
      const server = await createServer(config);
      let stopped = false;
      const stop = async () => {
        if (stopped) return;
        stopped = true;
        await server.close();
      };
      node = handle(id, { url: server.url, deviceUrl: server.deviceUrl, mqttUrl: server.mqttUrl! }, server, undefined, stop, async () => {
        throw new Error('kill -9 needs a child node');
      });
    } else {
      const child = fork(fileURLToPath(new URL('./node-child.ts', import.meta.url)), [], {
        cwd: ROOT,
        execPath: process.execPath,
        execArgv: [`${ROOT}node_modules/vite-node/vite-node.mjs`, '--config', `${ROOT}vitest.config.ts`],
        env: { ...process.env, FLEETKEY_NODE_CONFIG: JSON.stringify({ dataDir, databaseUrl: pg.url, clusterUrl: nats.url, cluster: clusterCfg, nodeId: id, maxPublishesPerSecond: CLUSTER_RATE }) },
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      });
      let err = '';
      child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
      const urls = await new Promise<{ url: string; deviceUrl: string; mqttUrl: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`node ${id} did not start: ${err}`)), 200_000);
        child.on('message', (m: { type: string; url: string; deviceUrl: string; mqttUrl: string }) => {
          if (m.type !== 'ready') return;
          clearTimeout(timer);
          resolve(m);
        });
        child.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`node ${id} exited ${code}: ${err}`));
        });
      });
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      const stop = async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.send({ type: 'stop' });
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      };
      const kill = async () => {
        child.kill('SIGKILL');
        await exited;
      };
      node = handle(id, urls, undefined, child, stop, kill);
    }
    nodes.push(node);
    return node;
  };

  try {
    // One at a time: the first node creates the CA and the admin token, the others find them.
    for (const [i, k] of kinds.entries()) await addNode(k, `node-${i + 1}`);
  } catch (e) {
    for (const n of nodes) await n.stop().catch(() => undefined);
    await nats.stop();
    await pg.drop();
    throw e;
  }

  return {
    nats,
    dataDir,
    databaseUrl: pg.url,
    nodes,
    addNode,
    stop: async () => {
      for (const n of nodes) await n.stop().catch(() => undefined);
      await nats.stop();
      await pg.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
