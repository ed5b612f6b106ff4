import { X509Certificate } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import type { Page } from 'playwright-core';
import { expect } from 'vitest';
import { deviceKey } from '../../../server/test/support/pki.js';
import { bundleOf, manufactured, provisionX509 } from '../../../server/test/support/provision.js';
import { startTestServer, type TestServer } from '../../../server/test/support/test-server.js';
import { launch, type Browser } from './browser.js';
import { ensureConsoleBuilt } from './build-console.js';

export const NAME = 'line-03-left-welding-12';
const SCREENSHOTS = fileURLToPath(new URL('../../../../docs/screenshots/', import.meta.url));
const UPDATE = process.env['UPDATE_SCREENSHOTS'] === '1';

export interface Robot {
  readonly id: string;
  readonly keyPem: string;
  readonly chainPem: string;
}

/**
 * A server with two provisioned robots (A bound to the name and sending diagnostics over MQTT,
 * B spare), operator and viewer tokens, and Debian chromium with a fresh profile.
 */
export class StoryFixture {
  t!: TestServer;
  browser!: Browser;
  a!: Robot;
  b!: Robot;
  readonly tokens: Record<string, string> = {};
  readonly clients: MqttClient[] = [];

  async start(): Promise<void> {
    ensureConsoleBuilt();
    const t = (this.t = await startTestServer('sqlite'));
    for (const role of ['operator', 'viewer'] as const) this.tokens[role] = (await t.call('POST', '/v1/tokens', { body: { role, name: `${role} console` } })).body.secret;
    await t.call('POST', '/v1/enrollments', { body: { label: 'robots', kind: 'group', attestation: 'x509' } });
    this.a = await this.robot();
    this.b = await this.robot();
    await t.call('POST', '/v1/names', { body: { name: NAME, tags: { line: '03', cell: 'welding' } } });
    expect((await t.call('POST', `/v1/names/${NAME}/bind`, { body: { deviceId: this.a.id } })).status).toBe(200);
    await this.publish(await this.connect(this.a), this.a, [41, 42, 43, 44, 45]);
    this.browser = await launch();
  }

  async stop(): Promise<void> {
    await this.browser?.close();
    for (const c of this.clients) await c.endAsync(true).catch(() => undefined);
    await this.t?.stop();
  }

  async robot(): Promise<Robot> {
    const m = await manufactured(this.t, 'kuka-kr16');
    const op = deviceKey();
    const r = await provisionX509(this.t, m, op.csrPem);
    if (r.status !== 200) throw new Error(`provisioning failed: ${JSON.stringify(r.body)}`);
    new X509Certificate(r.body.certificatePem as string);
    return { id: m.id, keyPem: op.keyPem, chainPem: r.body.chainPem as string };
  }

  /** A real device: MQTT 5 over TLS with its operational certificate. */
  async connect(r: Robot): Promise<MqttClient> {
    const c = await mqtt.connectAsync(this.t.server.mqttUrl!, { clientId: r.id, key: r.keyPem, cert: r.chainPem, ca: bundleOf(this.t), protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 10_000 });
    this.clients.push(c);
    return c;
  }

  async publish(c: MqttClient, r: Robot, values: number[]): Promise<void> {
    for (const v of values) await c.publishAsync(`devices/${r.id}/diagnostics`, JSON.stringify({ temperature: v }), { qos: 1 });
  }

  async holder(): Promise<string> {
    return (await this.t.call('GET', `/v1/names/${NAME}`)).body.deviceId as string;
  }

  async signIn(page: Page, token: string): Promise<void> {
    await page.goto(this.t.url);
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
  }

  /** docs/screenshots/<file>, only with UPDATE_SCREENSHOTS=1. */
  async shot(page: Page, file: string): Promise<void> {
    if (!UPDATE) return;
    mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: join(SCREENSHOTS, file), fullPage: true });
  }
}
