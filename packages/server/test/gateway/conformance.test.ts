/**
 * Regression tests for what an independent check found (issue 11): raw frames from
 * support/wire.ts, which writes what mqtt-packet and MQTT.js never would, against a real gateway
 * over mTLS. Each refusal is for the offending connection only: another device keeps publishing.
 */
import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectDevice, endClient, startHarness, until, type Harness } from './support/harness.js';
import { makePki, type Pki } from './support/pki.js';
import { RawClient } from './support/raw-client.js';
import * as w from './support/wire.js';

const A = randomUUID();
const B = randomUUID();
let pki: Pki;
let h: Harness;
let bystander: MqttClient;

beforeAll(async () => {
  pki = await makePki([A, B]);
  h = await startHarness(pki, { sweepIntervalMs: 50 });
  bystander = await connectDevice(h, pki, B, 5);
});
afterAll(async () => {
  if (bystander !== undefined) await endClient(bystander);
  await h?.close();
  await pki?.dispose();
});

async function open(version: 4 | 5, connect?: Buffer): Promise<RawClient> {
  const raw = await RawClient.open(h.port, pki, pki.devices.get(A)!, version);
  raw.send(connect ?? w.connect({ version, clientId: A }));
  return raw;
}

async function connected(version: 4 | 5): Promise<RawClient> {
  const raw = await open(version);
  expect(await raw.next('connack')).toMatchObject(version === 5 ? { reasonCode: 0 } : { returnCode: 0 });
  return raw;
}

/** The other device is still served: its QoS 1 PUBLISH is stored and acknowledged. */
async function bystanderServed(): Promise<void> {
  const payload = `still-${randomUUID()}`;
  await bystander.publishAsync(`devices/${B}/telemetry`, payload, { qos: 1 });
  expect(h.accepted.some((m) => m.deviceId === B && m.payload.toString() === payload)).toBe(true);
}

/** v5: DISCONNECT with `code`, then closed; v3.1.1: closed without a word. */
async function expectCut(raw: RawClient, version: 4 | 5, code: number): Promise<void> {
  if (version === 5) expect(await raw.next('disconnect')).toMatchObject({ reasonCode: code });
  expect(await raw.waitClosed()).toBe(true);
  if (version === 4) expect(raw.packets.filter((p) => p.cmd !== 'connack')).toEqual([]);
}

describe('defect 1: no packet raises past its connection', () => {
  it.each([4, 5] as const)('fail-v%i: a SUBSCRIBE with no topic filter is a protocol violation for that connection only [MQTT-3.8.3-3]', async (version) => {
    const raw = await connected(version);
    raw.send(w.subscribe(version, 7, []));
    await expectCut(raw, version, 0x82);
    expect(h.refusals.at(-1)).toMatchObject({ deviceId: A, reason: 'protocol_error' });
    await bystanderServed();
  });

  it.each([4, 5] as const)('fail-v%i: an UNSUBSCRIBE with no topic filter is a protocol violation [MQTT-3.10.3-2]', async (version) => {
    const raw = await connected(version);
    raw.send(w.unsubscribe(version, 8, []));
    await expectCut(raw, version, 0x82);
    await bystanderServed();
  });
});

describe('faults end one connection, not the process', () => {
  it('fail-v5: a handler that throws while serving a PUBLISH → DISCONNECT 0x83 to that device only, audited; others served', async () => {
    h.validate = (msg) => {
      if (msg.payload.toString() === 'boom') throw new Error('validator fault');
      return null;
    };
    try {
      const raw = await connected(5);
      raw.send(w.publish({ version: 5, topic: `devices/${A}/telemetry`, payload: 'boom', qos: 1, id: 5 }));
      await expectCut(raw, 5, 0x83);
      expect(h.refusals.at(-1)).toMatchObject({ deviceId: A, reason: 'internal_error' });
      await bystanderServed();
    } finally {
      h.validate = undefined;
    }
  });
});

describe('defect 4: CONNECT conformance (checked on the raw bytes)', () => {
  it.each([
    ['Receive Maximum 0 [MQTT-3.1.2.11.3]', [['receiveMaximum', 0]]],
    ['Maximum Packet Size 0 [MQTT-3.1.2.11.4]', [['maximumPacketSize', 0]]],
    ['Request Problem Information 2 [MQTT-3.1.2.11.7]', [['requestProblemInfo', 2]]],
    ['Request Response Information 2 [MQTT-3.1.2.11.6]', [['requestResponseInfo', 2]]],
    ['a duplicated Session Expiry Interval [MQTT-3.1.2.11.2]', [['sessionExpiry', 10], ['sessionExpiry', 20]]],
    ['a duplicated Receive Maximum', [['receiveMaximum', 5], ['receiveMaximum', 6]]],
    ['Authentication Data without Authentication Method [MQTT-3.1.2.11.10]', [['authData', Buffer.from('x')]]],
  ] as const)('fail-v5: CONNECT with %s → CONNACK 0x82 Protocol Error, closed', async (_what, list) => {
    const raw = await open(5, w.connect({ version: 5, clientId: A, props: list as readonly w.Prop[] }));
    expect(await raw.next('connack')).toMatchObject({ reasonCode: 0x82 });
    expect(await raw.waitClosed()).toBe(true);
    expect(h.gw.isConnected(A)).toBe(false);
    expect(h.refusals.at(-1)).toMatchObject({ reason: 'protocol_error' });
  });

  it('fail-v5: a property CONNECT may not carry (Topic Alias) → CONNACK 0x81 Malformed Packet [MQTT 5.0 §2.2.2.2]', async () => {
    const raw = await open(5, w.connect({ version: 5, clientId: A, props: [['topicAlias', 1]] }));
    expect(await raw.next('connack')).toMatchObject({ reasonCode: 0x81 });
    expect(await raw.waitClosed()).toBe(true);
  });

  it('fail-v5: bytes after the last CONNECT field → CONNACK 0x81 Malformed Packet', async () => {
    const raw = await open(5, w.connect({ version: 5, clientId: A, trailing: Buffer.from([0, 0, 0]) }));
    expect(await raw.next('connack')).toMatchObject({ reasonCode: 0x81 });
    expect(await raw.waitClosed()).toBe(true);
    expect(h.refusals.at(-1)).toMatchObject({ reason: 'malformed_packet' });
  });

  it('fail-v4: bytes after the last CONNECT field → closed without CONNACK [MQTT-3.1.4-1]', async () => {
    const raw = await open(4, w.connect({ version: 4, clientId: A, trailing: Buffer.from([1, 2]) }));
    expect(await raw.waitClosed()).toBe(true);
    expect(raw.packets).toEqual([]);
  });

  it('fail-v4: password flag without username flag → closed without CONNACK [MQTT-3.1.2-22]', async () => {
    const raw = await open(4, w.connect({ version: 4, clientId: A, password: 'secret' }));
    expect(await raw.waitClosed()).toBe(true);
    expect(raw.packets).toEqual([]);
    expect(h.authCalls.at(-1)?.password?.toString()).not.toBe('secret');
  });

  it('fail-v5: a client id that is not well-formed UTF-8 → CONNACK 0x81 [MQTT-1.5.4-1]', async () => {
    const bad = Buffer.concat([Buffer.from(A.slice(0, 35)), Buffer.from([0xc3])]);
    const body = Buffer.concat([w.str('MQTT'), w.u8(5), w.u8(0x02), w.u16(30), w.props([]), w.str(bad)]);
    const raw = await open(5, w.frame(0x10, body));
    expect(await raw.next('connack')).toMatchObject({ reasonCode: 0x81 });
  });
});

describe('defect 4: PUBLISH and SUBSCRIBE conformance', () => {
  it.each([4, 5] as const)('fail-v%i: PUBLISH to a topic with a wildcard → Topic Name invalid 0x90 [MQTT-3.3.2-2]', async (version) => {
    const raw = await connected(version);
    raw.send(w.publish({ version, topic: `devices/${A}/+`, payload: '{}', qos: 1, id: 3 }));
    await expectCut(raw, version, 0x90);
    expect(h.refusals.at(-1)).toMatchObject({ deviceId: A, reason: 'topic_name_invalid' });
  });

  it('fail-v5: SUBSCRIBE to $share/… → SUBACK 0x9E Shared Subscriptions not supported [MQTT-3.8.4-?; CONNACK said Shared Subscription Available 0]', async () => {
    const raw = await connected(5);
    raw.send(w.subscribe(5, 4, [[`$share/g/devices/${A}/commands/+`, 1], [`devices/${A}/commands/+`, 1]]));
    expect(await raw.next('suback')).toMatchObject({ messageId: 4, granted: [0x9e, 1] });
    raw.destroy();
  });

  it('fail-v5: a duplicated property in PUBLISH → DISCONNECT 0x82', async () => {
    const raw = await connected(5);
    raw.send(w.publish({ version: 5, topic: `devices/${A}/telemetry`, payload: '{}', props: [['messageExpiry', 5], ['messageExpiry', 6]] }));
    await expectCut(raw, 5, 0x82);
  });

  it('fail-v5: a PUBLISH from a client carrying a Subscription Identifier → DISCONNECT 0x82 [MQTT-3.3.4-6]', async () => {
    const raw = await connected(5);
    raw.send(w.publish({ version: 5, topic: `devices/${A}/telemetry`, payload: '{}', props: [['subscriptionId', 3]] }));
    await expectCut(raw, 5, 0x82);
  });

  it.each([4, 5] as const)('fail-v%i: QoS 1 PUBLISH with Packet Identifier 0 → protocol violation [MQTT-2.2.1-3]', async (version) => {
    const raw = await connected(version);
    raw.send(w.publish({ version, topic: `devices/${A}/telemetry`, payload: '{}', qos: 1, id: 0 }));
    await expectCut(raw, version, 0x82);
  });

  it('fail-v5: PINGREQ with a body → DISCONNECT 0x81 Malformed Packet', async () => {
    const raw = await connected(5);
    raw.send(Buffer.from([0xc0, 0x01, 0x00]));
    await expectCut(raw, 5, 0x81);
  });
});
