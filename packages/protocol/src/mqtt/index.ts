/**
 * The MQTT wire contract between devices and the gateway: topic grammar, packet limits and the
 * reason codes the gateway sends.
 */
export {
  TOPIC_ROOT,
  DEVICE_ID_PATTERN,
  COMMAND_ID_MAX_LENGTH,
  COMMAND_ID_PATTERN,
  isDeviceId,
  isCommandId,
  parseDeviceTopic,
  formatDeviceTopic,
  formatCommandTopic,
  parseCommandTopic,
  commandSubscriptionFilters,
  isOwnCommandFilter,
  attestationRequestTopic,
  isOwnAttestationRequestFilter,
} from './topics.js';
export type { DeviceMessageKind, ParsedDeviceTopic } from './topics.js';
export { MQTT_LIMITS, MQTT_PROTOCOL_VERSIONS } from './limits.js';
export type { MqttProtocolVersion } from './limits.js';
export { CONNACK_V4, REASON_V5, SUBACK_FAILURE_V4 } from './reason-codes.js';
export { UpdateReport, UPDATE_PHASES, parseUpdateReport } from './update-report.js';
export type { UpdatePhase } from './update-report.js';
