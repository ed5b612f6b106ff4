/**
 * A raw MQTT frame encoder for tests, written from the specification (MQTT 3.1.1 §2-3, MQTT 5.0
 * §1.5, §2, §3) and independent of mqtt-packet and of the gateway: it can write what no library
 * writes on purpose (empty SUBSCRIBE payloads, duplicated properties, reserved flag bits, wrong
 * Remaining Lengths, trailing bytes) so the gateway's own checks can be tested against them.
 */

/** Variable Byte Integer [MQTT-1.5.5]; `minimal: false` pads with continuation bytes (non-minimal, still ≤ 4). */
export function varint(n: number, pad = 0): Buffer {
  const out: number[] = [];
  let v = n;
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v > 0 || pad > 0) b |= 0x80;
    out.push(b);
  } while (v > 0);
  for (let i = 0; i < pad; i++) out.push(i === pad - 1 ? 0x00 : 0x80);
  return Buffer.from(out);
}

export const u8 = (n: number): Buffer => Buffer.from([n & 0xff]);
export const u16 = (n: number): Buffer => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
export const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
/** UTF-8 string or binary data: two-byte length then the bytes [MQTT-1.5.4, 1.5.6]. */
export const str = (s: string | Uint8Array): Buffer => {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : Buffer.from(s);
  return Buffer.concat([u16(b.length), b]);
};

/** MQTT 5 property identifiers [MQTT 5.0 §2.2.2.2, Table 2-4] with their wire types. */
export const PROP = {
  payloadFormat: [0x01, 'byte'],
  messageExpiry: [0x02, 'u32'],
  contentType: [0x03, 'str'],
  responseTopic: [0x08, 'str'],
  correlationData: [0x09, 'bin'],
  subscriptionId: [0x0b, 'var'],
  sessionExpiry: [0x11, 'u32'],
  assignedClientId: [0x12, 'str'],
  serverKeepAlive: [0x13, 'u16'],
  authMethod: [0x15, 'str'],
  authData: [0x16, 'bin'],
  requestProblemInfo: [0x17, 'byte'],
  willDelay: [0x18, 'u32'],
  requestResponseInfo: [0x19, 'byte'],
  responseInfo: [0x1a, 'str'],
  serverReference: [0x1c, 'str'],
  reasonString: [0x1f, 'str'],
  receiveMaximum: [0x21, 'u16'],
  topicAliasMaximum: [0x22, 'u16'],
  topicAlias: [0x23, 'u16'],
  maximumQoS: [0x24, 'byte'],
  retainAvailable: [0x25, 'byte'],
  userProperty: [0x26, 'pair'],
  maximumPacketSize: [0x27, 'u32'],
  wildcardAvailable: [0x28, 'byte'],
  subscriptionIdsAvailable: [0x29, 'byte'],
  sharedAvailable: [0x2a, 'byte'],
} as const;
export type PropName = keyof typeof PROP;
export type PropValue = number | string | Uint8Array | readonly [string, string];
/** A property by name, or raw bytes (an unknown identifier, a truncated value…). */
export type Prop = readonly [PropName, PropValue] | Buffer;

function propValue(type: (typeof PROP)[PropName][1], v: PropValue): Buffer {
  switch (type) {
    case 'byte':
      return u8(v as number);
    case 'u16':
      return u16(v as number);
    case 'u32':
      return u32(v as number);
    case 'var':
      return varint(v as number);
    case 'str':
    case 'bin':
      return str(v as string | Uint8Array);
    case 'pair':
      return Buffer.concat([str((v as readonly [string, string])[0]), str((v as readonly [string, string])[1])]);
  }
}

/** A property block: Property Length (varint) then the properties, in the given order [MQTT 5.0 §2.2.2]. */
export function props(list: readonly Prop[], lengthDelta = 0): Buffer {
  const body = Buffer.concat(
    list.map((p) => {
      if (Buffer.isBuffer(p)) return p;
      const [id, type] = PROP[p[0]];
      return Buffer.concat([u8(id), propValue(type, p[1])]);
    }),
  );
  return Buffer.concat([varint(Math.max(0, body.length + lengthDelta)), body]);
}

/** Fixed header + Remaining Length + body; `lengthDelta` makes the declared length lie. */
export function frame(firstByte: number, body: Buffer, lengthDelta = 0, pad = 0): Buffer {
  return Buffer.concat([u8(firstByte), varint(Math.max(0, body.length + lengthDelta), pad), body]);
}

export interface ConnectSpec {
  version: 4 | 5;
  clientId: string;
  keepalive?: number;
  clean?: boolean;
  /** Raw flag byte, overriding what the fields below imply. */
  flags?: number;
  props?: readonly Prop[];
  will?: { topic: string; payload: Uint8Array | string; qos?: number; retain?: boolean; props?: readonly Prop[] };
  username?: string;
  password?: Uint8Array | string;
  /** Bytes after the last field (a Malformed Packet). */
  trailing?: Uint8Array;
  protocolName?: string;
}

export function connect(c: ConnectSpec): Buffer {
  const will = c.will;
  let flags = 0;
  if (c.clean !== false) flags |= 0x02;
  if (will !== undefined) flags |= 0x04 | ((will.qos ?? 0) << 3) | (will.retain === true ? 0x20 : 0);
  if (c.password !== undefined) flags |= 0x40;
  if (c.username !== undefined) flags |= 0x80;
  const parts = [str(c.protocolName ?? 'MQTT'), u8(c.version), u8(c.flags ?? flags), u16(c.keepalive ?? 30)];
  if (c.version === 5) parts.push(props(c.props ?? []));
  parts.push(str(c.clientId));
  if (will !== undefined) {
    if (c.version === 5) parts.push(props(will.props ?? []));
    parts.push(str(will.topic), str(will.payload));
  }
  if (c.username !== undefined) parts.push(str(c.username));
  if (c.password !== undefined) parts.push(str(c.password));
  if (c.trailing !== undefined) parts.push(Buffer.from(c.trailing));
  return frame(0x10, Buffer.concat(parts));
}

export interface PublishSpec {
  version: 4 | 5;
  topic: string | Uint8Array;
  payload?: Uint8Array | string;
  qos?: number;
  id?: number;
  retain?: boolean;
  dup?: boolean;
  props?: readonly Prop[];
}

export function publish(p: PublishSpec): Buffer {
  const qos = p.qos ?? 0;
  const first = 0x30 | (p.dup === true ? 0x08 : 0) | ((qos & 3) << 1) | (p.retain === true ? 1 : 0);
  const parts = [str(p.topic)];
  if (qos > 0) parts.push(u16(p.id ?? 1));
  if (p.version === 5) parts.push(props(p.props ?? []));
  if (p.payload !== undefined) parts.push(Buffer.from(p.payload));
  return frame(first, Buffer.concat(parts));
}

export function subscribe(version: 4 | 5, id: number, subs: readonly (readonly [string | Uint8Array, number])[], propList: readonly Prop[] = [], firstByte = 0x82): Buffer {
  const parts = [u16(id)];
  if (version === 5) parts.push(props(propList));
  for (const [filter, options] of subs) parts.push(str(filter), u8(options));
  return frame(firstByte, Buffer.concat(parts));
}

export function unsubscribe(version: 4 | 5, id: number, filters: readonly (string | Uint8Array)[], propList: readonly Prop[] = [], firstByte = 0xa2): Buffer {
  const parts = [u16(id)];
  if (version === 5) parts.push(props(propList));
  for (const f of filters) parts.push(str(f));
  return frame(firstByte, Buffer.concat(parts));
}

export function puback(version: 4 | 5, id: number, reason?: number, propList?: readonly Prop[]): Buffer {
  const parts = [u16(id)];
  if (version === 5 && reason !== undefined) {
    parts.push(u8(reason));
    if (propList !== undefined) parts.push(props(propList));
  }
  return frame(0x40, Buffer.concat(parts));
}

export function disconnect(version: 4 | 5, reason?: number, propList?: readonly Prop[]): Buffer {
  const parts: Buffer[] = [];
  if (version === 5 && reason !== undefined) {
    parts.push(u8(reason));
    if (propList !== undefined) parts.push(props(propList));
  }
  return frame(0xe0, Buffer.concat(parts));
}

export const PINGREQ = Buffer.from([0xc0, 0x00]);
