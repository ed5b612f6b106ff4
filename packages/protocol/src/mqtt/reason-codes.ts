/**
 * MQTT return / reason codes the gateway sends, named once so the device SDK can tell an
 * administrative kick from a takeover or a refusal.
 */

/** MQTT 3.1.1 CONNACK return codes [MQTT-3.2.2.3], Table 3.1. */
export const CONNACK_V4 = {
  accepted: 0x00,
  unacceptableProtocolVersion: 0x01,
  identifierRejected: 0x02,
  serverUnavailable: 0x03,
  badUsernameOrPassword: 0x04,
  notAuthorized: 0x05,
} as const;

/** MQTT 5 reason codes [MQTT 5.0 §2.4], the subset the gateway uses. */
export const REASON_V5 = {
  success: 0x00,
  grantedQoS1: 0x01,
  noSubscriptionExisted: 0x11,
  unspecifiedError: 0x80,
  malformedPacket: 0x81,
  protocolError: 0x82,
  implementationSpecificError: 0x83,
  unsupportedProtocolVersion: 0x84,
  clientIdentifierNotValid: 0x85,
  badUserNameOrPassword: 0x86,
  notAuthorized: 0x87,
  payloadFormatInvalid: 0x99,
  serverUnavailable: 0x88,
  serverBusy: 0x89,
  badAuthenticationMethod: 0x8c,
  keepAliveTimeout: 0x8d,
  sessionTakenOver: 0x8e,
  topicFilterInvalid: 0x8f,
  topicNameInvalid: 0x90,
  receiveMaximumExceeded: 0x93,
  topicAliasInvalid: 0x94,
  packetTooLarge: 0x95,
  messageRateTooHigh: 0x96,
  quotaExceeded: 0x97,
  administrativeAction: 0x98,
  retainNotSupported: 0x9a,
  qosNotSupported: 0x9b,
  sharedSubscriptionsNotSupported: 0x9e,
  serverShuttingDown: 0x8b,
} as const;

/** MQTT 3.1.1 SUBACK failure [MQTT-3.9.3]. */
export const SUBACK_FAILURE_V4 = 0x80;
