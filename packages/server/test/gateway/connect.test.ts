import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDevice, endClient, startHarness, until, type Harness } from './support/harness.js';
import { makePki, type Pki } from './support/pki.js';
import { connectPacket, RawClient } from './support/raw-client.js';

const A = randomUUID();
const B = randomUUID();
let pki: Pki;
let h: Harness;

beforeAll(async () => {
  pki = await makePki([A, B]);
  h = await startHarness(pki, { connectTimeoutMs: 300, sweepIntervalMs: 50 });
});
afterAll(async () => {
  await h?.close();
  await pki?.dispose();
});

describe('CONNECT refusals', () => {
  it('fail-v4: client id differing from the certificate identity → 0x02 identifier rejected', async () => {
    const err = await connectDevice(h, pki, A, 4, { clientId: B }).then(
      () => undefined,
      (e: { code?: number }) => e,
    );
    expect(err?.code).toBe(2);
    expect(h.refusals.at(-1)).toMatchObject({ deviceId: A, reason: 'client_id_mismatch' });
    expect(h.gw.isConnected(A)).toBe(false);
  });

  it('fail-v5: client id mismatch → 0x85 client identifier not valid', async () => {
    const err = await connectDevice(h, pki, A, 5, { clientId: 'someone-else' }).catch((e: { code?: number }) => e);
    expect((err as { code?: number }).code).toBe(0x85);
  });

  it.each([
    ['bad_credentials', 4, 4],
    ['not_authorized', 4, 5],
    ['server_unavailable', 4, 3],
    ['bad_credentials', 5, 0x86],
    ['not_authorized', 5, 0x87],
    ['identifier_rejected', 5, 0x85],
  ] as const)('fail: authenticate says %s → v%i CONNACK %i', async (reason, version, code) => {
    h.authOverride.set(A, { ok: false, reason, detail: 'test refusal' });
    try {
      const err = await connectDevice(h, pki, A, version).catch((e: { code?: number }) => e);
      expect((err as { code?: number }).code).toBe(code);
      expect(h.refusals.at(-1)).toMatchObject({ reason, detail: 'test refusal' });
    } finally {
      h.authOverride.delete(A);
    }
  });

  it('fail: a certificate from an untrusted CA never reaches MQTT', async () => {
    const before = h.authCalls.length;
    const err = await connectDevice(h, pki, A, 5, {}, pki.rogue).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(h.authCalls.length).toBe(before);
    await until(() => h.refusals.some((r) => r.reason === 'tls_handshake_failed'));
  });

  it('fail: a first packet other than CONNECT closes the connection [MQTT-3.1.0-1]', async () => {
    const raw = await RawClient.open(h.port, pki, pki.devices.get(A)!);
    raw.send({ cmd: 'pingreq' });
    expect(await raw.waitClosed()).toBe(true);
    expect(raw.packets).toHaveLength(0);
    expect(h.refusals.at(-1)).toMatchObject({ reason: 'protocol_error' });
  });

  it('fail: no CONNECT within connectTimeoutMs → closed', async () => {
    const raw = await RawClient.open(h.port, pki, pki.devices.get(A)!);
    const t0 = Date.now();
    expect(await raw.waitClosed(2000)).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(h.refusals.at(-1)).toMatchObject({ reason: 'connect_timeout' });
  });

  it('fail: MQTT 3.1 (level 3) → CONNACK 0x01 then close', async () => {
    const raw = await RawClient.open(h.port, pki, pki.devices.get(A)!, 4);
    raw.send(connectPacket(A, 4, { protocolId: 'MQIsdp', protocolVersion: 3 }), 4);
    const ack = await raw.next('connack');
    expect(ack).toMatchObject({ returnCode: 1 });
    expect(await raw.waitClosed()).toBe(true);
  });

  it('fail-v5: enhanced authentication is refused with 0x8C', async () => {
    const raw = await RawClient.open(h.port, pki, pki.devices.get(A)!);
    raw.send(connectPacket(A, 5, { properties: { authenticationMethod: 'SCRAM-SHA-1' } }));
    expect(await raw.next('connack')).toMatchObject({ reasonCode: 0x8c });
    expect(await raw.waitClosed()).toBe(true);
  });

  it('fail: a Will on another device topic is refused (v5 0x87, v4 0x05)', async () => {
    const will = { topic: `devices/${B}/state`, payload: Buffer.from('x'), qos: 0 as const, retain: false };
    const e5 = await connectDevice(h, pki, A, 5, { will }).catch((e: { code?: number }) => e);
    expect((e5 as { code?: number }).code).toBe(0x87);
    const e4 = await connectDevice(h, pki, A, 4, { will }).catch((e: { code?: number }) => e);
    expect((e4 as { code?: number }).code).toBe(5);
  });
});

describe('CONNECT accepted', () => {
  it.each([4, 5] as const)('v%i: CONNACK 0 with the certificate identity', async (version) => {
    const c = await connectDevice(h, pki, A, version);
    try {
      expect(c.connected).toBe(true);
      expect(h.gw.isConnected(A)).toBe(true);
      expect(h.authCalls.at(-1)).toMatchObject({ clientId: A, protocolVersion: version });
      expect(h.authCalls.at(-1)?.peerCertificate?.subject.CN).toBe(A);
    } finally {
      await endClient(c);
    }
    await until(() => !h.gw.isConnected(A));
    expect(h.disconnects.at(-1)).toMatchObject({ deviceId: A, reason: 'client_disconnect' });
  });

  it('v5: CONNACK announces Maximum QoS 1, no retain, receive maximum and packet size', async () => {
    const raw = await RawClient.open(h.port, pki, pki.devices.get(A)!);
    raw.send(connectPacket(A, 5, { keepalive: 0 }));
    const ack = await raw.next('connack');
    expect(ack).toMatchObject({
      reasonCode: 0,
      sessionPresent: false,
      properties: { maximumQoS: 1, retainAvailable: false, topicAliasMaximum: 0, serverKeepAlive: 1200 },
    });
    raw.destroy();
  });

  it('v4: session present follows CleanSession=0 across reconnects [MQTT-3.2.2-2]', async () => {
    const c1 = await connectDevice(h, pki, B, 4, { clean: false });
    expect(c1.connected).toBe(true);
    await endClient(c1);
    await until(() => !h.gw.isConnected(B));
    const raw = await RawClient.open(h.port, pki, pki.devices.get(B)!, 4);
    raw.send(connectPacket(B, 4, { clean: false }), 4);
    expect(await raw.next('connack')).toMatchObject({ returnCode: 0, sessionPresent: true });
    raw.destroy();
    await until(() => !h.gw.isConnected(B));
    const raw2 = await RawClient.open(h.port, pki, pki.devices.get(B)!, 4);
    raw2.send(connectPacket(B, 4, { clean: true }), 4);
    expect(await raw2.next('connack')).toMatchObject({ returnCode: 0, sessionPresent: false });
    raw2.destroy();
  });
});
