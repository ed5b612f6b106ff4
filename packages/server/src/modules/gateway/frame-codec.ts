/**
 * Framing and decoding of MQTT control packets on top of mqtt-packet.
 *
 * mqtt-packet's parser buffers a packet until its declared Remaining Length has arrived, with no
 * upper bound, so the gateway frames the byte stream itself: it reads the fixed header, refuses a
 * packet larger than the limit before buffering it [MQTT-3.2.2.3.6], and hands mqtt-packet only
 * complete frames. Because every frame is complete and parse() is synchronous, one parser per
 * protocol version serves every connection: no parser, buffer list or closures per connection.
 */
import * as mqttPacket from 'mqtt-packet';
import type { Packet } from 'mqtt-packet';

/** Result of reading a fixed header at an offset. */
export const HEADER_INCOMPLETE = -1;
export const HEADER_MALFORMED = -2;

/**
 * Returns the total length (fixed header + Remaining Length) of the packet starting at `offset`,
 * HEADER_INCOMPLETE when more bytes are needed, or HEADER_MALFORMED for a Remaining Length longer
 * than four bytes [MQTT-1.5.5-1].
 */
export function frameLength(buf: Buffer, offset: number): number {
  let value = 0;
  let multiplier = 1;
  for (let i = 1; i <= 4; i++) {
    const at = offset + i;
    if (at >= buf.length) return HEADER_INCOMPLETE;
    const byte = buf[at] as number;
    value += (byte & 0x7f) * multiplier;
    if ((byte & 0x80) === 0) return 1 + i + value;
    multiplier *= 128;
  }
  return HEADER_MALFORMED;
}

type MqttParser = ReturnType<typeof mqttPacket.parser> & {
  settings: { protocolVersion?: number };
  _pos: number;
  _stateCounter: number;
  _list: { length: number };
  _resetState(): void;
};

// mqtt-packet's _resetState() leaves `_pos` behind, and its length decoder reads from `_pos`: a
// parse that failed mid-packet would corrupt the next one (found by fuzz.test.ts). A shared
// parser must start every frame from a verified clean state.
function ensureClean(p: MqttParser): void {
  if (p._stateCounter !== 0 || p._list.length !== 0) p._resetState();
  p._pos = 0;
}

let decoded: Packet | undefined;
let decodeError: Error | undefined;

function onPacket(packet: Packet): void {
  decoded = packet;
}
function onError(err: Error): void {
  decodeError = err;
}

function makeParser(protocolVersion: number): MqttParser {
  const p = mqttPacket.parser({ protocolVersion }) as MqttParser;
  p.on('packet', onPacket);
  p.on('error', onError);
  return p;
}

const parsers = { 4: makeParser(4), 5: makeParser(5) } as const;
// Frozen settings objects: mqtt-packet replaces `settings` with the CONNECT packet it parsed
// (password included), so every call resets them rather than letting a parser keep a secret.
const SETTINGS = { 4: Object.freeze({ protocolVersion: 4 }), 5: Object.freeze({ protocolVersion: 5 }) } as const;

/**
 * Decodes one complete frame. `version` is the connection's negotiated protocol level; a CONNECT
 * carries its own and is decoded with either parser. Returns the packet or the parse error.
 */
export function decodeFrame(frame: Buffer, version: 4 | 5): Packet | Error {
  const parser = parsers[version];
  ensureClean(parser);
  parser.settings = SETTINGS[version];
  decoded = undefined;
  decodeError = undefined;
  try {
    parser.parse(frame);
  } catch (err) {
    decodeError = err instanceof Error ? err : new Error(String(err));
  }
  parser.settings = SETTINGS[version];
  const packet = decoded;
  const error = decodeError;
  decoded = undefined;
  decodeError = undefined;
  if (error !== undefined || packet === undefined) {
    // A failed or incomplete parse leaves state behind; the next frame must start clean.
    parser._resetState();
    parser._pos = 0;
    return error ?? new Error('incomplete packet');
  }
  return packet;
}

/** Encodes a packet with mqtt-packet for the connection's protocol level. */
export function encode(packet: Packet, version: 4 | 5): Buffer {
  return mqttPacket.generate(packet, version === 5 ? SETTINGS[5] : SETTINGS[4]);
}

// PUBACK and PINGRESP are the hot path; their success forms are fixed bytes. In MQTT 5 a PUBACK
// with reason 0x00 and no properties may omit both and keep Remaining Length 2 [MQTT-3.4.2.1].
export function pubackSuccess(packetId: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b[0] = 0x40;
  b[1] = 0x02;
  b.writeUInt16BE(packetId, 2);
  return b;
}

export const PINGRESP = Buffer.from([0xd0, 0x00]);

/** Packet type from the first byte of a frame (MQTT-2.2.1). */
export function packetType(firstByte: number): number {
  return firstByte >> 4;
}
export const TYPE_CONNECT = 1;
