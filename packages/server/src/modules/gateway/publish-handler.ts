/**
 * Device → cloud PUBLISH. The device may publish only on its own topics; QoS 1 is acknowledged
 * only once accept() says the message is durably stored, and in arrival order [MQTT-4.6.0-2].
 * While too many stores are pending the socket is not read (backpressure): TCP flow control then
 * slows the device and no memory grows, and nothing acknowledged is ever dropped.
 */
import type { IPublishPacket } from 'mqtt-packet';
import { parseDeviceTopic, REASON_V5 } from '@fleetkey/protocol';
import type { AckTicket, Connection } from './connection.js';
import { State } from './connection.js';
import { encode, pubackSuccess } from './frame-codec.js';
import type { AcceptedMessage, RefusalReason } from './types.js';

export function handlePublish(conn: Connection, packet: IPublishPacket): void {
  const core = conn.core;
  const limits = core.limits;
  const v5 = conn.version === 5;
  core.stats.messagesIn++;

  if (packet.qos === 2) {
    // CONNACK announced Maximum QoS 1; a QoS 2 PUBLISH is then refused with 0x9B [MQTT-3.2.2-12].
    // v3.1.1 cannot say so: closing is the only refusal it has [MQTT-3.3.5-2].
    conn.protocolFailure('qos_not_supported', 'QoS 2 PUBLISH', REASON_V5.qosNotSupported);
    return;
  }
  if (!takeToken(conn)) {
    conn.protocolFailure('rate_limited', `over ${limits.maxPublishesPerSecond} PUBLISH/s for this device`, REASON_V5.messageRateTooHigh);
    return;
  }
  if (v5) {
    // Topic Alias Maximum was announced as 0, so any alias is invalid [MQTT-3.3.2-9].
    if (packet.properties?.topicAlias !== undefined) {
      conn.protocolFailure('topic_alias_invalid', 'topic alias used', REASON_V5.topicAliasInvalid);
      return;
    }
    // Retain Available 0 was announced [MQTT-3.2.2-14].
    if (packet.retain) {
      conn.protocolFailure('retain_not_supported', 'retained PUBLISH', REASON_V5.retainNotSupported);
      return;
    }
    if (packet.qos === 1 && conn.acks.length >= limits.receiveMaximum) {
      // More unacknowledged QoS 1 than the Receive Maximum we announced [MQTT-3.3.4-9].
      conn.protocolFailure('receive_maximum_exceeded', 'receive maximum exceeded', REASON_V5.receiveMaximumExceeded);
      return;
    }
  }
  // v3.1.1 RETAIN is ignored: the gateway stores, it does not retain for other subscribers.
  const topic = packet.topic;
  if (topic.length > limits.maxTopicLength) {
    refusePublish(conn, packet, 'topic_too_long', `topic of ${topic.length} characters`, REASON_V5.topicNameInvalid);
    return;
  }
  const parsed = parseDeviceTopic(topic);
  if (parsed === undefined || parsed.deviceId !== conn.deviceId) {
    refusePublish(conn, packet, 'topic_not_allowed', `publish to ${topic.slice(0, 160)}`, REASON_V5.notAuthorized);
    return;
  }

  // Issue 13: a quarantined device keeps its connection (it must still attest and update) but no
  // data or command result of it is accepted; the refusal names the reason in the audit log.
  const contained = core.hooks.contained?.(parsed.deviceId) ?? null;
  if (contained !== null) {
    refusePublish(conn, packet, 'quarantined', `quarantined: ${contained}`.slice(0, 300), REASON_V5.notAuthorized);
    return;
  }

  const msg: AcceptedMessage = {
    deviceId: parsed.deviceId,
    kind: parsed.kind,
    // Copied so the stored payload never pins the socket's read chunk.
    payload: Buffer.from(packet.payload as Buffer),
    qos: packet.qos,
    receivedAt: new Date(),
  };
  if (parsed.kind === 'command_result') msg.commandId = parsed.commandId;
  const invalid = core.hooks.validate?.(msg) ?? null;
  if (invalid !== null) {
    refusePublish(conn, packet, 'payload_invalid', invalid, REASON_V5.payloadFormatInvalid);
    return;
  }

  let ticket: AckTicket | undefined;
  if (packet.qos === 1) {
    ticket = { packetId: packet.messageId ?? 0, done: false };
    conn.acks.push(ticket);
  }
  conn.pendingStores++;
  core.stats.pendingStores++;
  store(conn, msg, ticket).catch((err: unknown) => conn.fault(err, 'store'));
}

async function store(conn: Connection, msg: AcceptedMessage, ticket: AckTicket | undefined): Promise<void> {
  const core = conn.core;
  let ok = true;
  try {
    await core.hooks.accept(msg);
  } catch (err) {
    ok = false;
    core.stats.storeFailures++;
    core.reportError(err, 'accept');
  }
  conn.pendingStores--;
  core.stats.pendingStores--;
  if (conn.state !== State.Connected) return;
  if (!ok) {
    if (ticket !== undefined) {
      // Not stored, so not acknowledged: closing makes the device resend it on its next session
      // (at-least-once), where a negative PUBACK would make it give the message up.
      conn.close('store_failed', REASON_V5.serverBusy);
      return;
    }
  } else if (ticket !== undefined) {
    ticket.done = true;
    flushAcks(conn);
  }
  conn.maybeResume();
}

function flushAcks(conn: Connection): void {
  const acks = conn.acks;
  while (acks.length > 0 && (acks[0] as AckTicket).done) {
    const t = acks.shift() as AckTicket;
    conn.core.stats.messagesAcked++;
    conn.send(pubackFor(t));
  }
}

/**
 * Refuses one PUBLISH. v5 QoS 1: PUBACK with the reason, connection kept [MQTT-3.4.2.1].
 * v5 QoS 0 and every v3.1.1 case: close, since "it has no way of informing that Client" and must
 * close rather than acknowledge what it did not accept [MQTT-3.3.5-2].
 */
function refusePublish(conn: Connection, packet: IPublishPacket, reason: RefusalReason, detail: string, code: number): void {
  conn.core.stats.messagesRefused++;
  if (conn.version === 5 && packet.qos === 1) {
    conn.refuse(reason, detail);
    const id = packet.messageId ?? 0;
    if (conn.acks.length === 0) conn.send(encode({ cmd: 'puback', messageId: id, reasonCode: code }, 5));
    else {
      // Keep PUBACK order: queue an already-done ticket carrying the refusal.
      conn.acks.push({ packetId: id, done: true });
      refusedAcks.set(conn.acks[conn.acks.length - 1] as AckTicket, code);
    }
    return;
  }
  conn.protocolFailure(reason, detail, code);
}

// Rare path: refusals queued behind pending stores remember their code out of line, so the
// common ticket stays two fields.
const refusedAcks = new WeakMap<AckTicket, number>();

export function pubackFor(ticket: AckTicket): Buffer {
  const code = refusedAcks.get(ticket);
  return code === undefined ? pubackSuccess(ticket.packetId) : encode({ cmd: 'puback', messageId: ticket.packetId, reasonCode: code }, 5);
}

function takeToken(conn: Connection): boolean {
  if (conn.core.publishRate.take(conn.deviceId as string, Date.now())) return true;
  // PUBLISHes the device sent while the gateway was not reading arrive together: they are paid
  // from the credit of that pause, not counted as the device's burst (connection.ts maybeResume).
  if (conn.backlogCredit >= 1) {
    conn.backlogCredit -= 1;
    return true;
  }
  return false;
}
