/**
 * Byte-level checks of what a client sends, run on every complete frame BEFORE mqtt-packet decodes
 * it. mqtt-packet's parser is lenient where the specification is not: it keeps the last of two
 * duplicated properties, ignores bytes after the last CONNECT field, accepts a SUBSCRIBE with no
 * filter, property identifiers the packet may not carry and ill-formed UTF-8. Each rule below
 * cites its clause; a frame that passes is one mqtt-packet decodes the way the spec reads it.
 *
 * Reason codes follow MQTT 5.0 §4.13: a frame that cannot be read as the spec lays it out is a
 * Malformed Packet (0x81); a well-formed frame that breaks a rule is a Protocol Error (0x82).
 */
import { isUtf8 } from 'node:buffer';
import { REASON_V5 } from '@fleetkey/protocol';
import type { RefusalReason } from './types.js';

export interface Violation {
  /** v5 reason code for CONNACK or DISCONNECT; a v3.1.1 peer is closed without one. */
  code: number;
  reason: RefusalReason;
  detail: string;
}

class Malformed extends Error {}
class ProtocolError extends Error {}

/** Bounded reader: any read past the end is a Malformed Packet, never an exception outside. */
class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
    public end: number,
  ) {
    this.pos = start;
  }
  left(): number {
    return this.end - this.pos;
  }
  need(n: number, what: string): void {
    if (this.pos + n > this.end) throw new Malformed(`${what} runs past the packet`);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++] as number;
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  /** Variable Byte Integer: at most four bytes [MQTT-1.5.5-1]. */
  varint(what: string): number {
    let value = 0;
    let mul = 1;
    for (let i = 0; i < 4; i++) {
      const b = this.u8(what);
      value += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return value;
      mul *= 128;
    }
    throw new Malformed(`${what}: variable byte integer longer than four bytes`);
  }
  binary(what: string): Buffer {
    const n = this.u16(what);
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  /** UTF-8 Encoded String: well-formed UTF-8 [MQTT-1.5.4-1] (no surrogates), no U+0000 [MQTT-1.5.4-2]. */
  utf8(what: string): Buffer {
    const b = this.binary(what);
    if (!isUtf8(b)) throw new Malformed(`${what} is not well-formed UTF-8`);
    if (b.includes(0)) throw new Malformed(`${what} contains U+0000`);
    return b;
  }
}

// MQTT 5.0 §2.2.2.2 Table 2-4: identifier → wire type. Only what a client may send is listed
// per packet below; anything else in a client's packet is a Malformed Packet.
type PropType = 'byte' | 'u16' | 'u32' | 'var' | 'str' | 'bin' | 'pair';
const PROP_TYPES: ReadonlyMap<number, PropType> = new Map<number, PropType>([
  [0x01, 'byte'], [0x02, 'u32'], [0x03, 'str'], [0x08, 'str'], [0x09, 'bin'], [0x0b, 'var'],
  [0x11, 'u32'], [0x15, 'str'], [0x16, 'bin'], [0x17, 'byte'], [0x18, 'u32'], [0x19, 'byte'],
  [0x1c, 'str'], [0x1f, 'str'], [0x21, 'u16'], [0x22, 'u16'], [0x23, 'u16'], [0x26, 'pair'], [0x27, 'u32'],
]);
const USER_PROPERTY = 0x26;
const ALLOWED = {
  connect: new Set([0x11, 0x21, 0x27, 0x22, 0x19, 0x17, 0x26, 0x15, 0x16]), // §3.1.2.11
  will: new Set([0x18, 0x01, 0x02, 0x03, 0x08, 0x09, 0x26]), // §3.1.3.2
  // 0x0b is listed so that its presence is answered as the Protocol Error it is [MQTT-3.3.4-6].
  publish: new Set([0x01, 0x02, 0x23, 0x08, 0x09, 0x26, 0x0b, 0x03]), // §3.3.2.3
  puback: new Set([0x1f, 0x26]), // §3.4.2.2
  subscribe: new Set([0x0b, 0x26]), // §3.8.2.1
  unsubscribe: new Set([0x26]), // §3.10.2.1
  disconnect: new Set([0x11, 0x1f, 0x26, 0x1c]), // §3.14.2.2
} as const;

/**
 * Reads a property block; returns identifier → numeric value (numbers only, for the rules that
 * need them). Duplicates are a Protocol Error (each property's "more than once" rule, §3.x.2.x),
 * except User Property, which may repeat.
 */
function properties(r: Reader, allowed: ReadonlySet<number>, what: string): Map<number, number> {
  const length = r.varint(`${what} property length`);
  r.need(length, `${what} properties`);
  const outerEnd = r.end;
  r.end = r.pos + length;
  const seen = new Map<number, number>();
  while (r.left() > 0) {
    const id = r.varint(`${what} property identifier`);
    const type = PROP_TYPES.get(id);
    if (type === undefined || !allowed.has(id)) throw new Malformed(`${what} may not carry property 0x${id.toString(16)}`);
    if (id !== USER_PROPERTY && seen.has(id)) throw new ProtocolError(`${what} property 0x${id.toString(16)} given twice`);
    let value = -1;
    switch (type) {
      case 'byte':
        value = r.u8(what);
        break;
      case 'u16':
        value = r.u16(what);
        break;
      case 'u32':
        value = r.u32(what);
        break;
      case 'var':
        value = r.varint(what);
        break;
      case 'str':
        r.utf8(what);
        break;
      case 'bin':
        r.binary(what);
        break;
      case 'pair':
        r.utf8(what);
        r.utf8(what);
        break;
    }
    seen.set(id, value);
  }
  r.end = outerEnd;
  return seen;
}

function packetId(r: Reader, what: string): void {
  // SUBSCRIBE, UNSUBSCRIBE and QoS > 0 PUBLISH carry a non-zero Packet Identifier [MQTT-2.2.1-3].
  if (r.u16(`${what} packet identifier`) === 0) throw new ProtocolError(`${what} with packet identifier 0`);
}

function done(r: Reader, what: string): void {
  if (r.left() !== 0) throw new Malformed(`${r.left()} bytes after the last field of ${what}`);
}

function bodyStart(frame: Buffer): number {
  let i = 1;
  while (((frame[i] as number) & 0x80) !== 0) i++;
  return i + 1;
}

/** What the CONNECT frame says about itself before it is trusted: its protocol level. */
export function connectLevel(frame: Buffer): number {
  const at = bodyStart(frame);
  if (frame.length < at + 7) return -1;
  const nameLength = frame.readUInt16BE(at);
  return frame[at + 2 + nameLength] ?? -1;
}

/**
 * CONNECT [MQTT 3.1.1 §3.1, MQTT 5.0 §3.1]. Levels other than 4 and 5 are left to the handler,
 * which answers CONNACK 0x01 [MQTT-3.1.2-2].
 */
export function checkConnect(frame: Buffer): Violation | undefined {
  return guarded(() => {
    const r = new Reader(frame, bodyStart(frame), frame.length);
    const name = r.utf8('protocol name').toString('latin1');
    const level = r.u8('protocol level');
    if (level !== 4 && level !== 5) return;
    if (name !== 'MQTT') throw new Malformed(`protocol name ${name.slice(0, 16)}`); // [MQTT-3.1.2-1]
    const flags = r.u8('connect flags');
    if ((flags & 0x01) !== 0) throw new Malformed('reserved connect flag set'); // [MQTT-3.1.2-3]
    const will = (flags & 0x04) !== 0;
    const willQos = (flags >> 3) & 0x03;
    if (willQos === 3) throw new Malformed('will QoS 3'); // [MQTT-3.1.2-14]
    if (!will && (willQos !== 0 || (flags & 0x20) !== 0)) throw new Malformed('will QoS or retain without will flag'); // [MQTT-3.1.2-13, -15]
    const username = (flags & 0x80) !== 0;
    const password = (flags & 0x40) !== 0;
    // v3.1.1: a password needs a user name [MQTT-3.1.2-22]; MQTT 5 lifted this (§3.1.2.9).
    if (level === 4 && password && !username) throw new ProtocolError('password flag without user name flag');
    r.u16('keep alive');
    if (level === 5) {
      const p = properties(r, ALLOWED.connect, 'CONNECT');
      // "It is a Protocol Error to include the Receive Maximum value more than once or for it to
      // have the value 0" (§3.1.2.11.3); the same for Maximum Packet Size (§3.1.2.11.4).
      if (p.get(0x21) === 0) throw new ProtocolError('Receive Maximum 0');
      if (p.get(0x27) === 0) throw new ProtocolError('Maximum Packet Size 0');
      const rri = p.get(0x19);
      if (rri !== undefined && rri > 1) throw new ProtocolError(`Request Response Information ${rri}`); // §3.1.2.11.6
      const rpi = p.get(0x17);
      if (rpi !== undefined && rpi > 1) throw new ProtocolError(`Request Problem Information ${rpi}`); // §3.1.2.11.7
      if (p.has(0x16) && !p.has(0x15)) throw new ProtocolError('Authentication Data without Authentication Method'); // §3.1.2.11.10
    }
    r.utf8('client identifier'); // [MQTT-3.1.3-4]
    if (will) {
      if (level === 5) {
        const p = properties(r, ALLOWED.will, 'will');
        const pfi = p.get(0x01);
        if (pfi !== undefined && pfi > 1) throw new ProtocolError(`will Payload Format Indicator ${pfi}`);
      }
      r.utf8('will topic'); // [MQTT-3.1.3-11]
      r.binary('will payload');
    }
    if (username) r.utf8('user name'); // [MQTT-3.1.3-11]
    if (password) r.binary('password');
    done(r, 'CONNECT'); // the payload is exactly these fields [MQTT-3.1.3-1]
  });
}

/** Every packet after CONNECT, by type, for the connection's protocol level. */
export function checkFrame(frame: Buffer, version: 4 | 5): Violation | undefined {
  const type = (frame[0] as number) >> 4;
  const flags = (frame[0] as number) & 0x0f;
  switch (type) {
    case 3:
      return guarded(() => checkPublish(frame, flags, version));
    case 4:
      return guarded(() => checkPuback(frame, version));
    case 8:
      return guarded(() => checkSubscribe(frame, version));
    case 10:
      return guarded(() => checkUnsubscribe(frame, version));
    case 12:
      // PINGREQ has no variable header and no payload [MQTT 3.12].
      return frame.length === 2 ? undefined : { code: REASON_V5.malformedPacket, reason: 'malformed_packet', detail: 'PINGREQ with a body' };
    case 14:
      return guarded(() => checkDisconnect(frame, version));
    default:
      // CONNECT again, QoS 2 flows, AUTH, server-only packets: refused by the dispatcher.
      return undefined;
  }
}

function checkPublish(frame: Buffer, flags: number, version: 4 | 5): Violation | undefined {
  const qos = (flags >> 1) & 0x03;
  if (qos === 3) throw new Malformed('PUBLISH with both QoS bits set'); // [MQTT-3.3.1-4]
  // DUP must be 0 on QoS 0 [MQTT-3.3.1-2].
  if (qos === 0 && (flags & 0x08) !== 0) throw new ProtocolError('DUP set on a QoS 0 PUBLISH');
  const r = new Reader(frame, bodyStart(frame), frame.length);
  const topic = r.utf8('topic name');
  if (qos > 0) packetId(r, 'PUBLISH');
  if (version === 5) {
    const p = properties(r, ALLOWED.publish, 'PUBLISH');
    if (p.has(0x0b)) throw new ProtocolError('PUBLISH from a client with a Subscription Identifier'); // [MQTT-3.3.4-6]
    if (p.get(0x23) === 0) throw new ProtocolError('Topic Alias 0'); // [MQTT-3.3.2-8]
    const pfi = p.get(0x01);
    if (pfi !== undefined && pfi > 1) throw new ProtocolError(`Payload Format Indicator ${pfi}`);
  }
  // A Topic Name holds no wildcard [MQTT-3.3.2-2]; the gateway announced Topic Alias Maximum 0, so
  // an empty one can never be completed by an alias [MQTT-3.3.2-1, 4.7.3-1].
  if (topic.includes(0x2b) || topic.includes(0x23)) {
    return { code: REASON_V5.topicNameInvalid, reason: 'topic_name_invalid', detail: 'wildcard in a topic name' };
  }
  if (topic.length === 0) throw new ProtocolError('empty topic name');
  return undefined;
}

function checkPuback(frame: Buffer, version: 4 | 5): void {
  const r = new Reader(frame, bodyStart(frame), frame.length);
  r.u16('PUBACK packet identifier');
  // v3.1.1: Remaining Length is exactly 2 [MQTT 3.4.1]; v5 may add a reason code and properties.
  if (version === 5 && r.left() > 0) {
    r.u8('PUBACK reason code');
    if (r.left() > 0) properties(r, ALLOWED.puback, 'PUBACK');
  }
  done(r, 'PUBACK');
}

function checkSubscribe(frame: Buffer, version: 4 | 5): void {
  const r = new Reader(frame, bodyStart(frame), frame.length);
  packetId(r, 'SUBSCRIBE');
  if (version === 5) {
    const p = properties(r, ALLOWED.subscribe, 'SUBSCRIBE');
    if (p.get(0x0b) === 0) throw new ProtocolError('Subscription Identifier 0'); // §3.8.2.1.2
  }
  // At least one Topic Filter [MQTT-3.8.3-3] (v5: "a SUBSCRIBE packet with no Payload is a Protocol Error").
  if (r.left() === 0) throw new ProtocolError('SUBSCRIBE without a topic filter');
  while (r.left() > 0) {
    const filter = r.utf8('topic filter');
    if (filter.length === 0) throw new ProtocolError('empty topic filter'); // [MQTT-4.7.3-1]
    const options = r.u8('subscription options');
    if (version === 4) {
      if ((options & 0xfc) !== 0) throw new Malformed('reserved subscription bits set'); // [MQTT-3-8.3-4]
    } else {
      if ((options & 0xc0) !== 0) throw new Malformed('reserved subscription option bits set'); // [MQTT-3.8.3-5]
      if (((options >> 4) & 0x03) === 3) throw new ProtocolError('Retain Handling 3'); // §3.8.3.1
    }
    if ((options & 0x03) === 3) throw new Malformed('subscription QoS 3'); // [MQTT-3-8.3-4]
  }
}

function checkUnsubscribe(frame: Buffer, version: 4 | 5): void {
  const r = new Reader(frame, bodyStart(frame), frame.length);
  packetId(r, 'UNSUBSCRIBE');
  if (version === 5) properties(r, ALLOWED.unsubscribe, 'UNSUBSCRIBE');
  // At least one Topic Filter [MQTT-3.10.3-2].
  if (r.left() === 0) throw new ProtocolError('UNSUBSCRIBE without a topic filter');
  while (r.left() > 0) r.utf8('topic filter');
}

function checkDisconnect(frame: Buffer, version: 4 | 5): void {
  const r = new Reader(frame, bodyStart(frame), frame.length);
  // v3.1.1 DISCONNECT has no variable header and no payload [MQTT 3.14].
  if (version === 5 && r.left() > 0) {
    r.u8('DISCONNECT reason code');
    if (r.left() > 0) properties(r, ALLOWED.disconnect, 'DISCONNECT');
  }
  done(r, 'DISCONNECT');
}

function guarded(check: () => Violation | undefined | void): Violation | undefined {
  try {
    return check() ?? undefined;
  } catch (err) {
    if (err instanceof ProtocolError) return { code: REASON_V5.protocolError, reason: 'protocol_error', detail: err.message };
    const detail = err instanceof Malformed ? err.message : `unreadable frame: ${String(err)}`;
    return { code: REASON_V5.malformedPacket, reason: 'malformed_packet', detail };
  }
}
