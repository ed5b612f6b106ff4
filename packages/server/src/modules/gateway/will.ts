/**
 * Will messages. A device may leave a Will only on its own device → cloud topics, at QoS 0 or 1,
 * not retained, with a payload the validate hook accepts — checked at CONNECT exactly like a
 * PUBLISH, because once the link drops there is nobody left to refuse; it is handed to accept() like any message when the connection ends without a
 * normal DISCONNECT [MQTT-3.1.2-8], and discarded after one [MQTT-3.1.2-10]. The v5 Will Delay
 * Interval is not honoured: the Will is delivered at once (documented shortcut).
 */
import type { IConnectPacket } from 'mqtt-packet';
import { parseDeviceTopic, REASON_V5, CONNACK_V4 } from '@fleetkey/protocol';
import type { Connection } from './connection.js';
import type { DeviceMessageKind } from '@fleetkey/protocol';
import type { RefusalReason } from './types.js';

export interface Will {
  kind: DeviceMessageKind;
  commandId: string | undefined;
  payload: Buffer;
  qos: 0 | 1;
}

export type WillCheck = { will: Will | undefined } | { refusal: RefusalReason; v4: number; v5: number; detail: string };

export function checkWill(packet: IConnectPacket, deviceId: string, maxTopicLength: number): WillCheck {
  const w = packet.will;
  if (w === undefined || w === null) return { will: undefined };
  if (w.qos === 2) {
    return { refusal: 'qos_not_supported', v4: CONNACK_V4.notAuthorized, v5: REASON_V5.qosNotSupported, detail: 'will QoS 2' };
  }
  if (w.retain === true) {
    return { refusal: 'retain_not_supported', v4: CONNACK_V4.notAuthorized, v5: REASON_V5.retainNotSupported, detail: 'retained will' };
  }
  if (w.topic.includes('+') || w.topic.includes('#')) {
    // The Will Topic is a Topic Name: no wildcards [MQTT-3.1.3-11, MQTT-3.3.2-2].
    return { refusal: 'topic_name_invalid', v4: CONNACK_V4.notAuthorized, v5: REASON_V5.topicNameInvalid, detail: 'wildcard in will topic' };
  }
  const parsed = w.topic.length <= maxTopicLength ? parseDeviceTopic(w.topic) : undefined;
  if (parsed === undefined || parsed.deviceId !== deviceId) {
    return { refusal: 'will_not_allowed', v4: CONNACK_V4.notAuthorized, v5: REASON_V5.notAuthorized, detail: 'will topic not allowed' };
  }
  const payload = typeof w.payload === 'string' ? Buffer.from(w.payload) : Buffer.from(w.payload);
  return {
    will: {
      kind: parsed.kind,
      commandId: parsed.kind === 'command_result' ? parsed.commandId : undefined,
      payload,
      qos: w.qos === 1 ? 1 : 0,
    },
  };
}

export function deliverWill(conn: Connection, will: Will): void {
  const deviceId = conn.deviceId;
  if (deviceId === undefined) return;
  const core = conn.core;
  try {
    void core.hooks
      .accept({
        deviceId,
        kind: will.kind,
        ...(will.commandId !== undefined ? { commandId: will.commandId } : {}),
        payload: will.payload,
        qos: will.qos,
        receivedAt: new Date(),
      })
      .catch((err: unknown) => core.reportError(err, 'accept(will)'));
  } catch (err) {
    core.reportError(err, 'accept(will)');
  }
}
