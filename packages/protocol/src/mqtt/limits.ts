/**
 * Packet limits and timing shared by the gateway and the device SDK, so a device built against
 * these never sends what the gateway refuses. The gateway may be configured tighter; an MQTT 5
 * device learns the effective values from CONNACK (Maximum Packet Size, Receive Maximum,
 * Server Keep Alive, Maximum QoS) [MQTT-3.2.2.3].
 */
export const MQTT_LIMITS = {
  /** Whole MQTT control packet, fixed header included [MQTT-3.2.2.3.6]. */
  maxPacketBytes: 256 * 1024,
  /** Longest topic the gateway accepts; the longest valid Fleetkey topic is 125 characters. */
  maxTopicLength: 256,
  /** QoS 1 PUBLISHes a device may have unacknowledged at once (v5 Receive Maximum). */
  receiveMaximum: 64,
  /** Highest QoS the gateway supports: QoS 2 is refused [MQTT-3.2.2-9]. */
  maximumQoS: 1,
  /** Keep-alive the SDK uses, and the ceiling the gateway imposes (Server Keep Alive). */
  defaultKeepAliveSeconds: 60,
  maxKeepAliveSeconds: 1200,
  /** Time from TCP accept to a complete CONNECT before the gateway closes the socket. */
  connectTimeoutMs: 10_000,
} as const;

export const MQTT_PROTOCOL_VERSIONS = [4, 5] as const;
export type MqttProtocolVersion = (typeof MQTT_PROTOCOL_VERSIONS)[number];
