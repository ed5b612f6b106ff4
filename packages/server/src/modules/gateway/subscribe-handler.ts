/**
 * SUBSCRIBE / UNSUBSCRIBE. The only filters a device may hold are its own command filters
 * (`devices/{ownId}/commands/+` or `/#`); anything else gets a failure code in the SUBACK
 * (v3.1.1 0x80 [MQTT-3.9.3], v5 0x87 Not authorized) and an audit record. QoS 2 requests are
 * granted QoS 1: a server may grant less than asked (MQTT 3.1.1 §3.8.4, v5 §3.8.4).
 */
import type { ISubscribePacket, IUnsubscribePacket } from 'mqtt-packet';
import { isOwnAttestationRequestFilter, isOwnCommandFilter, REASON_V5, SUBACK_FAILURE_V4 } from '@fleetkey/protocol';
import type { Connection } from './connection.js';
import { deliverPending } from './commands.js';

function filterBit(filter: string): number {
  return filter.endsWith('+') ? 1 : 2;
}

export function handleSubscribe(conn: Connection, packet: ISubscribePacket): void {
  const session = conn.session;
  const deviceId = conn.deviceId;
  if (session === undefined || deviceId === undefined) return;
  const maxTopic = conn.core.limits.maxTopicLength;
  const failure = conn.version === 5 ? REASON_V5.notAuthorized : SUBACK_FAILURE_V4;
  const granted: number[] = [];
  let subscribed = false;
  for (const sub of packet.subscriptions) {
    if (sub.topic.startsWith('$share/')) {
      // CONNACK announced Shared Subscription Available 0: such a filter gets 0x9E [MQTT-3.8.3-4 ff.,
      // MQTT 5.0 §3.2.2.3.15]; v3.1.1 has only its one failure code.
      conn.refuse('subscribe_not_allowed', `shared subscription ${sub.topic.slice(0, 160)}`);
      granted.push(conn.version === 5 ? REASON_V5.sharedSubscriptionsNotSupported : SUBACK_FAILURE_V4);
      continue;
    }
    // Issue 13: the device's own attestation request topic, QoS 0, allowed even while quarantined
    // (attesting is how a quarantined device gets out).
    if (isOwnAttestationRequestFilter(deviceId, sub.topic)) {
      session.attestationRequests = true;
      granted.push(0);
      continue;
    }
    if (sub.topic.length > maxTopic || !isOwnCommandFilter(deviceId, sub.topic)) {
      conn.refuse('subscribe_not_allowed', `subscribe to ${sub.topic.slice(0, 160)}`);
      granted.push(failure);
      continue;
    }
    const contained = conn.core.hooks.contained?.(deviceId) ?? null;
    if (contained !== null) {
      // Issue 13: no commands reach a quarantined device; they wait in the store for its release.
      conn.refuse('quarantined', `subscribe while quarantined: ${contained}`.slice(0, 300));
      granted.push(failure);
      continue;
    }
    const qos = sub.qos >= 1 ? 1 : 0;
    session.filters |= filterBit(sub.topic);
    session.subscribedQos = Math.max(session.subscribedQos, qos) as 0 | 1;
    granted.push(qos);
    subscribed = true;
  }
  if (granted.length === 0) {
    // frame-check.ts refuses this before decoding; kept so no path can encode an empty SUBACK.
    conn.protocolFailure('protocol_error', 'SUBSCRIBE without a topic filter', REASON_V5.protocolError); // [MQTT-3.8.3-3]
    return;
  }
  // SUBACK with the same Packet Identifier, one code per filter in order [MQTT-3.8.4-1, 3.9.3-1].
  conn.sendPacket({ cmd: 'suback', messageId: packet.messageId ?? 0, granted });
  // Commands are delivered on (re)subscription: the store is the source of truth.
  if (subscribed) deliverPending(conn, false);
}

export function handleUnsubscribe(conn: Connection, packet: IUnsubscribePacket): void {
  const session = conn.session;
  const deviceId = conn.deviceId;
  if (session === undefined || deviceId === undefined) return;
  if (packet.unsubscriptions.length === 0) {
    conn.protocolFailure('protocol_error', 'UNSUBSCRIBE without a topic filter', REASON_V5.protocolError); // [MQTT-3.10.3-2]
    return;
  }
  const codes: number[] = [];
  for (const filter of packet.unsubscriptions) {
    if (isOwnAttestationRequestFilter(deviceId, filter)) {
      codes.push(session.attestationRequests ? REASON_V5.success : REASON_V5.noSubscriptionExisted);
      session.attestationRequests = false;
      continue;
    }
    const own = isOwnCommandFilter(deviceId, filter);
    const bit = own ? filterBit(filter) : 0;
    if (bit !== 0 && (session.filters & bit) !== 0) {
      session.filters &= ~bit;
      codes.push(REASON_V5.success);
    } else {
      codes.push(REASON_V5.noSubscriptionExisted);
    }
  }
  if (session.filters === 0) session.subscribedQos = -1;
  // UNSUBACK [MQTT-3.10.4-4]; reason codes exist only in v5 [MQTT-3.11.3].
  if (conn.version === 5) conn.sendPacket({ cmd: 'unsuback', messageId: packet.messageId ?? 0, granted: codes });
  else conn.sendPacket({ cmd: 'unsuback', messageId: packet.messageId ?? 0, granted: [] });
}
