/**
 * Structure-aware MQTT fuzzing: fast-check arbitraries that BUILD RAW FRAMES with support/wire.ts
 * (not with mqtt-packet, whose encoder refuses to write the very packets that crashed the gateway,
 * issue 11): every packet type of MQTT 3.1.1 and 5, fields valid or not, v5 properties including
 * unknown, misplaced, truncated and duplicated ones, then frame-level mutations (bit flips,
 * truncation, Remaining Length lies, reserved flag bits, non-minimal lengths, garbage) and floods.
 * Shared by fuzz-gateway.test.ts and `npm run fuzz` (bench/fuzz/run.mjs): one generator.
 */
import fc from 'fast-check';
import * as w from '../wire.js';

/** Fixed device ids: a campaign with the same seed sends the same bytes. */
export const FUZZ_DEVICES = [
  '7f1c2a9e-4b3d-4e8f-9a1b-2c3d4e5f6a7b',
  '0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d',
  'c3d2e1f0-a9b8-4c7d-b6e5-f4a3b2c1d0e9',
] as const;

export type Version = 4 | 5;

const version: fc.Arbitrary<Version> = fc.constantFrom(4, 5);
const id16 = fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 65_535 }) }, { weight: 1, arbitrary: fc.constant(0) });
const bytes = (max: number): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength: max }).map((u) => Buffer.from(u));
/** Strings, including what UTF-8 forbids in MQTT: ill-formed sequences, surrogates, U+0000. */
const mqttString = (own: readonly string[]): fc.Arbitrary<string | Uint8Array> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...own) },
    { weight: 2, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 1, arbitrary: fc.constantFrom('', '#', '+', '$SYS/x', '$share/g/x', 'a/+/b', 'a\u0000b', '\ud800') },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 24 }) },
  );

const json = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
  fc.constantFrom('{"partsPerHour":42}', 'not json', '', '{', '\u0000'),
);

/** A property by name with a value of its type (sometimes out of range), or raw bytes. */
const PROP_NAMES = Object.keys(w.PROP) as w.PropName[];
const prop: fc.Arbitrary<w.Prop> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.constantFrom(...PROP_NAMES).chain((name): fc.Arbitrary<w.Prop> => {
      const type = w.PROP[name][1];
      const value: fc.Arbitrary<w.PropValue> =
        type === 'byte'
          ? fc.oneof(fc.constantFrom(0, 1), fc.integer({ min: 0, max: 255 }))
          : type === 'u16'
            ? fc.oneof(fc.constantFrom(0, 1, 65_535), fc.integer({ min: 0, max: 65_535 }))
            : type === 'u32'
              ? fc.oneof(fc.constantFrom(0, 1, 0xffffffff), fc.nat())
              : type === 'var'
                ? fc.integer({ min: 0, max: 268_435_455 })
                : type === 'pair'
                  ? fc.tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }))
                  : fc.oneof(fc.string({ maxLength: 16 }), fc.uint8Array({ maxLength: 16 }));
      return value.map((v) => [name, v] as const);
    }),
  },
  // Unknown identifiers, truncated values, identifiers as multi-byte varints.
  { weight: 1, arbitrary: bytes(6) },
);
const props = fc.array(prop, { maxLength: 4 });
const propDelta = fc.oneof({ weight: 9, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -3, max: 3 }) });

export interface Target {
  /** The device id this connection authenticated as (its client certificate CN). */
  self: string;
}

function ownTopics(self: string): string[] {
  return [`devices/${self}/telemetry`, `devices/${self}/diagnostics`, `devices/${self}/state`, `devices/${self}/commands/c1/result`];
}

export const connectFrame = (v: Version, self: string): fc.Arbitrary<Buffer> =>
  fc
    .record({
      clientId: fc.oneof({ weight: 6, arbitrary: fc.constant(self) }, { weight: 1, arbitrary: fc.string({ maxLength: 40 }) }),
      keepalive: fc.oneof(fc.constantFrom(0, 30, 65_535), fc.integer({ min: 0, max: 65_535 })),
      clean: fc.boolean(),
      flags: fc.option(fc.integer({ min: 0, max: 255 }), { freq: 6, nil: undefined }),
      props: props,
      will: fc.option(
        fc.record({ topic: mqttString(ownTopics(self)), payload: json, qos: fc.integer({ min: 0, max: 3 }), retain: fc.boolean(), props }),
        { freq: 3, nil: undefined },
      ),
      username: fc.option(fc.string({ maxLength: 20 }), { freq: 4, nil: undefined }),
      password: fc.option(bytes(20), { freq: 4, nil: undefined }),
      trailing: fc.option(bytes(4), { freq: 8, nil: undefined }),
      protocolName: fc.oneof({ weight: 12, arbitrary: fc.constant('MQTT') }, { weight: 1, arbitrary: fc.constantFrom('MQIsdp', 'MQTT5', '') }),
      level: fc.oneof({ weight: 12, arbitrary: fc.constant(v) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }),
    })
    .map((c) => {
      const spec: w.ConnectSpec = { version: v, clientId: c.clientId, keepalive: c.keepalive, clean: c.clean, props: c.props, protocolName: c.protocolName };
      if (c.flags !== undefined) spec.flags = c.flags;
      if (c.will !== undefined) spec.will = { topic: typeof c.will.topic === 'string' ? c.will.topic : Buffer.from(c.will.topic).toString('latin1'), payload: c.will.payload, qos: c.will.qos, retain: c.will.retain, props: c.will.props };
      if (c.username !== undefined) spec.username = c.username;
      if (c.password !== undefined) spec.password = c.password;
      if (c.trailing !== undefined) spec.trailing = c.trailing;
      const f = w.connect(spec);
      // The protocol level sits right after the protocol name.
      if (c.level !== v) f[1 + (f[1]! & 0x80 ? 2 : 1) + 2 + Buffer.byteLength(c.protocolName)] = c.level;
      return f;
    });

/** A well-formed packet a connected device may legitimately send (the "valid stream" mode). */
export const goodFrame = (v: Version, self: string): fc.Arbitrary<Buffer> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.record({ topic: fc.constantFrom(...ownTopics(self)), payload: fc.jsonValue({ maxDepth: 2 }), qos: fc.constantFrom(0, 1), id: fc.integer({ min: 1, max: 65_535 }) }).map((p) => w.publish({ version: v, topic: p.topic, payload: JSON.stringify(p.payload) ?? 'null', qos: p.qos, id: p.id })) },
    { weight: 1, arbitrary: fc.constant(w.PINGREQ) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 65_535 }).map((i) => w.subscribe(v, i, [[`devices/${self}/commands/+`, 1]])) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 65_535 }).map((i) => w.unsubscribe(v, i, [`devices/${self}/commands/+`])) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 65_535 }).map((i) => w.puback(v, i)) },
  );

/** Any packet type, any field: the structured half of the fuzzer. */
export const anyFrame = (v: Version, self: string): fc.Arbitrary<Buffer> => {
  const topic = mqttString(ownTopics(self));
  const filter = mqttString([`devices/${self}/commands/+`, `devices/${self}/commands/#`, '#', `$share/g/devices/${self}/commands/+`]);
  return fc.oneof(
    { weight: 6, arbitrary: fc.record({ topic, payload: json, qos: fc.integer({ min: 0, max: 3 }), id: id16, retain: fc.boolean(), dup: fc.boolean(), props }).map((p) => w.publish({ version: v, ...p })) },
    { weight: 3, arbitrary: fc.record({ id: id16, subs: fc.array(fc.tuple(filter, fc.oneof(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 255 }))), { maxLength: 4 }), props, first: fc.constantFrom(0x82, 0x82, 0x82, 0x80, 0x83) }).map((s) => w.subscribe(v, s.id, s.subs, s.props, s.first)) },
    { weight: 2, arbitrary: fc.record({ id: id16, filters: fc.array(filter, { maxLength: 3 }), props, first: fc.constantFrom(0xa2, 0xa2, 0xa0) }).map((s) => w.unsubscribe(v, s.id, s.filters, s.props, s.first)) },
    { weight: 2, arbitrary: fc.record({ id: id16, reason: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }), props: fc.option(props, { nil: undefined }) }).map((a) => w.puback(v, a.id, a.reason, a.props)) },
    // QoS 2 flow, server → client packets, AUTH, reserved types: any body.
    { weight: 2, arbitrary: fc.record({ type: fc.constantFrom(0, 2, 5, 6, 7, 9, 11, 13, 15), flags: fc.integer({ min: 0, max: 15 }), body: bytes(12) }).map((r) => w.frame((r.type << 4) | r.flags, r.body)) },
    { weight: 1, arbitrary: fc.constant(w.PINGREQ) },
    { weight: 1, arbitrary: fc.record({ reason: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }), props: fc.option(props, { nil: undefined }) }).map((d) => w.disconnect(v, d.reason, d.props)) },
    { weight: 1, arbitrary: connectFrame(v, self) },
  );
};

/** Frame-level mutations: what a structured generator alone would never write. */
type Mutation =
  | { kind: 'none' }
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'lengthLie'; delta: number }
  | { kind: 'flags'; flags: number }
  | { kind: 'nonMinimalLength' }
  | { kind: 'garbage'; bytes: Buffer };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 12, arbitrary: fc.constant<Mutation>({ kind: 'none' }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('lengthLie' as const), delta: fc.integer({ min: -8, max: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('flags' as const), flags: fc.integer({ min: 0, max: 15 }) }) },
  { weight: 1, arbitrary: fc.constant<Mutation>({ kind: 'nonMinimalLength' }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('garbage' as const), bytes: bytes(40) }) },
);

function bodyOf(f: Buffer): { first: number; body: Buffer } {
  let i = 1;
  while (i < f.length && (f[i]! & 0x80) !== 0) i++;
  return { first: f[0]!, body: f.subarray(i + 1) };
}

export function mutate(f: Buffer, m: Mutation): Buffer {
  switch (m.kind) {
    case 'none':
      return f;
    case 'flip': {
      const b = Buffer.from(f);
      const i = m.at % b.length;
      b[i] = b[i]! ^ (1 << m.bit);
      return b;
    }
    case 'truncate':
      return f.subarray(0, m.at % f.length);
    case 'lengthLie': {
      const { first, body } = bodyOf(f);
      return w.frame(first, body, m.delta);
    }
    case 'flags': {
      const { first, body } = bodyOf(f);
      return w.frame((first & 0xf0) | m.flags, body);
    }
    case 'nonMinimalLength': {
      const { first, body } = bodyOf(f);
      return w.frame(first, body, 0, 1);
    }
    case 'garbage':
      return Buffer.concat([f, m.bytes]);
  }
}

const mutated = (frame: fc.Arbitrary<Buffer>): fc.Arbitrary<Buffer> => fc.tuple(frame, mutation).map(([f, m]) => mutate(f, m));

export type SessionMode = 'stream' | 'structured' | 'flood' | 'preconnect' | 'anonymous';

export interface Session {
  mode: SessionMode;
  version: Version;
  /** Index into FUZZ_DEVICES of the client certificate used; -1: no certificate. */
  identity: number;
  frames: Buffer[];
  /** Sizes of the writes the bytes are cut into (0: all at once). */
  chunk: number;
}

/**
 * One fuzz connection. Modes: `stream` (a valid CONNECT, mostly good packets, a few faults),
 * `structured` (a valid CONNECT, then anything, mutated), `flood` (one packet repeated hundreds
 * of times in one write), `preconnect` (a fuzzed CONNECT or garbage first, with a certificate)
 * and `anonymous` (the same without a client certificate).
 */
export const session: fc.Arbitrary<Session> = fc
  .record({
    mode: fc.constantFrom<SessionMode>('stream', 'stream', 'structured', 'structured', 'structured', 'flood', 'preconnect', 'anonymous'),
    version,
    identity: fc.integer({ min: 0, max: FUZZ_DEVICES.length - 1 }),
    chunk: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 64 }) }),
  })
  .chain((s) => {
    const self = FUZZ_DEVICES[s.identity]!;
    const valid = w.connect({ version: s.version, clientId: self });
    const base = { version: s.version, chunk: s.chunk };
    switch (s.mode) {
      case 'stream':
        return fc
          .array(fc.oneof({ weight: 40, arbitrary: goodFrame(s.version, self) }, { weight: 1, arbitrary: mutated(anyFrame(s.version, self)) }), { minLength: 20, maxLength: 300 })
          .map((frames) => ({ ...base, mode: s.mode, identity: s.identity, frames: [valid, ...frames] }));
      case 'structured':
        return fc.array(mutated(anyFrame(s.version, self)), { minLength: 1, maxLength: 100 }).map((frames) => ({ ...base, mode: s.mode, identity: s.identity, frames: [valid, ...frames] }));
      case 'flood':
        return fc
          .tuple(fc.oneof(goodFrame(s.version, self), anyFrame(s.version, self)), fc.integer({ min: 50, max: 400 }))
          .map(([f, n]) => ({ ...base, mode: s.mode, identity: s.identity, frames: [valid, ...new Array<Buffer>(n).fill(f)] }));
      case 'preconnect':
      case 'anonymous':
        return fc
          .tuple(fc.oneof(mutated(connectFrame(s.version, self)), mutated(anyFrame(s.version, self)), bytes(64)), fc.array(mutated(anyFrame(s.version, self)), { maxLength: 5 }))
          .map(([first, rest]) => ({ ...base, mode: s.mode, identity: s.mode === 'anonymous' ? -1 : s.identity, frames: [first, ...rest] }));
    }
  });

/** `count` sessions of batch `batch` of a campaign seeded with `seed`: same inputs, same bytes. */
export function sessions(seed: number, batch: number, count: number): Session[] {
  return fc.sample(session, { seed: (seed + batch * 7919) | 0, numRuns: count });
}
