/**
 * Cloud → device commands: QoS 1 PUBLISH on devices/{id}/commands/{commandId}, bounded in-flight
 * window (our limit, and the device's v5 Receive Maximum [MQTT-3.3.4-7]), a bounded queue behind
 * it, PUBACK → onCommandAcked. Durability is the store's: what is not acknowledged stays pending
 * there and comes back through pendingCommands() on the next (re)subscription.
 */
import type { IPubackPacket } from 'mqtt-packet';
import { formatCommandTopic } from '@fleetkey/protocol';
import type { Connection } from './connection.js';
import { State } from './connection.js';
import { encode } from './frame-codec.js';

interface Queued {
  commandId: string;
  payload: Buffer;
  dup: boolean;
}

/** Per-connection outbound state, created on the first command only. */
export class OutboundCommands {
  readonly inflight = new Map<number, string>();
  readonly queue: Queued[] = [];
  /** Command ids in flight or queued, so a redelivery racing sendCommand is not sent twice. */
  readonly known = new Set<string>();
  nextId = 1;
}

function outbound(conn: Connection): OutboundCommands {
  conn.out ??= new OutboundCommands();
  return conn.out;
}

function window(conn: Connection): number {
  return Math.min(conn.core.limits.maxInflightPerConn, conn.clientReceiveMaximum);
}

/** Queues a command to a live, subscribed connection; false when it cannot take it now. */
export function enqueueCommand(conn: Connection, commandId: string, payload: Buffer, dup: boolean): boolean {
  if (conn.state !== State.Connected || conn.session === undefined || conn.session.subscribedQos < 0) return false;
  // Issue 13: held in the store while the device is quarantined (a subscription made before it was).
  if (conn.deviceId !== undefined && (conn.core.hooks.contained?.(conn.deviceId) ?? null) !== null) return false;
  const out = outbound(conn);
  if (out.known.has(commandId)) return true;
  if (out.inflight.size < window(conn)) {
    out.known.add(commandId);
    transmit(conn, out, commandId, payload, dup);
    return true;
  }
  if (out.queue.length >= conn.core.limits.maxQueuedCommands) return false;
  out.known.add(commandId);
  out.queue.push({ commandId, payload, dup });
  return true;
}

function transmit(conn: Connection, out: OutboundCommands, commandId: string, payload: Buffer, dup: boolean): void {
  const session = conn.session;
  if (session === undefined || conn.deviceId === undefined) return;
  const qos = session.subscribedQos === 1 ? 1 : 0; // delivered at the granted QoS [MQTT-3.8.4-8]
  let messageId: number | undefined;
  if (qos === 1) {
    // Packet identifiers in use are skipped [MQTT-2.3.1-2]; 0 is never valid [MQTT-2.3.1-1].
    do {
      messageId = out.nextId;
      out.nextId = out.nextId === 65_535 ? 1 : out.nextId + 1;
    } while (out.inflight.has(messageId));
  }
  const buf = encode(
    {
      cmd: 'publish',
      topic: formatCommandTopic(conn.deviceId, commandId),
      payload,
      qos,
      dup: qos === 1 && dup, // DUP is 0 for QoS 0 [MQTT-3.3.1-2]
      retain: false,
      ...(messageId !== undefined ? { messageId } : {}),
    },
    conn.version,
  );
  if (buf.length > conn.clientMaxPacketBytes) {
    // The device said it cannot take it [MQTT-3.1.2-25]: skip; it stays pending in the store.
    out.known.delete(commandId);
    conn.core.reportError(new Error('command larger than the device Maximum Packet Size'), 'sendCommand');
    return;
  }
  conn.core.stats.commandsSent++;
  if (messageId !== undefined) {
    out.inflight.set(messageId, commandId);
    (session.unacked ??= new Set()).add(commandId);
  } else {
    out.known.delete(commandId);
  }
  conn.send(buf);
}

export function handleCommandPuback(conn: Connection, packet: IPubackPacket): void {
  const out = conn.out;
  const id = packet.messageId ?? 0;
  const commandId = out?.inflight.get(id);
  if (out === undefined || commandId === undefined || conn.deviceId === undefined) return; // stale or unknown: ignored
  out.inflight.delete(id);
  out.known.delete(commandId);
  conn.session?.unacked?.delete(commandId);
  const core = conn.core;
  core.stats.commandsAcked++;
  const hook = core.hooks.onCommandAcked;
  if (hook !== undefined) {
    try {
      void hook(conn.deviceId, commandId, packet.reasonCode ?? 0).catch((err: unknown) => core.reportError(err, 'onCommandAcked'));
    } catch (err) {
      core.reportError(err, 'onCommandAcked');
    }
  }
  while (out.queue.length > 0 && out.inflight.size < window(conn) && conn.state === State.Connected) {
    const next = out.queue.shift() as Queued;
    transmit(conn, out, next.commandId, next.payload, next.dup);
  }
}

/**
 * Fetches the store's pending commands and sends them. On a resumed session, commands sent
 * before and not acknowledged go out again with DUP=1 [MQTT-4.4.0-1]; otherwise they are new
 * deliveries in a new session (DUP=0).
 */
export function deliverPending(conn: Connection, resumed: boolean): void {
  const hook = conn.core.hooks.pendingCommands;
  const deviceId = conn.deviceId;
  if (hook === undefined || deviceId === undefined) return;
  fetchAndSend(conn, deviceId, resumed).catch((err: unknown) => conn.fault(err, 'pendingCommands'));
}

async function fetchAndSend(conn: Connection, deviceId: string, resumed: boolean): Promise<void> {
  const core = conn.core;
  let list;
  try {
    list = await (core.hooks.pendingCommands as NonNullable<typeof core.hooks.pendingCommands>)(deviceId);
  } catch (err) {
    core.reportError(err, 'pendingCommands');
    return;
  }
  if (conn.state !== State.Connected) return;
  const unacked = conn.session?.unacked;
  for (const cmd of list) {
    const dup = resumed && unacked !== undefined && unacked.has(cmd.commandId);
    if (!enqueueCommand(conn, cmd.commandId, cmd.payload, dup)) break;
  }
}
