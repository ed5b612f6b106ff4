/**
 * The MQTT topic grammar of the Fleetkey gateway, shared by the server and the device SDK.
 *
 * A device speaks only about itself: every topic starts with its own authenticated device id.
 *
 *   device → cloud (PUBLISH by the device, QoS 0 or 1)
 *     devices/{deviceId}/diagnostics                    business data, stored under the bound name
 *     devices/{deviceId}/telemetry                      internal telemetry, stored under the device
 *     devices/{deviceId}/state                          reported state
 *     devices/{deviceId}/commands/{commandId}/result    outcome of a command
 *     devices/{deviceId}/update                         update progress and outcome (update-report.ts)
 *
 *   cloud → device (PUBLISH by the gateway, QoS 1)
 *     devices/{deviceId}/commands/{commandId}
 *   cloud → device (PUBLISH by the gateway, QoS 0; issue 13)
 *     devices/{deviceId}/attestation/request     the server asks for an attestation now
 *   (subscribed to by that exact filter; allowed while the device is quarantined)
 *   which the device receives by subscribing to one of
 *     devices/{deviceId}/commands/+    or    devices/{deviceId}/commands/#
 *
 * `deviceId` is a lowercase canonical UUID (8-4-4-4-12 hex). `commandId` is a bounded token
 * (`[A-Za-z0-9][A-Za-z0-9._-]{0,63}`): no `/`, `+`, `#` or NUL, so it can never widen a topic or
 * filter [MQTT-4.7.1-1]. Anything else is not a Fleetkey topic and is refused by the gateway.
 */
import { FleetkeyError } from '../errors/index.js';
import { UUID_PATTERN } from '../identity.js';

export const TOPIC_ROOT = 'devices';

/**
 * The registry's device id form (identity.ts UUID_PATTERN), lowercase only: uppercase is refused
 * so one device has exactly one topic spelling.
 */
export const DEVICE_ID_PATTERN = new RegExp(UUID_PATTERN);
export const COMMAND_ID_MAX_LENGTH = 64;
export const COMMAND_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** What a device may publish, as the gateway hands it to the store. */
export type DeviceMessageKind = 'diagnostics' | 'telemetry' | 'state' | 'command_result' | 'update';

export type ParsedDeviceTopic =
  | { readonly deviceId: string; readonly kind: 'diagnostics' | 'telemetry' | 'state' | 'update' }
  | { readonly deviceId: string; readonly kind: 'command_result'; readonly commandId: string };

export function isDeviceId(value: string): boolean {
  return value.length === 36 && DEVICE_ID_PATTERN.test(value);
}

export function isCommandId(value: string): boolean {
  return value.length <= COMMAND_ID_MAX_LENGTH && COMMAND_ID_PATTERN.test(value);
}

// 'devices/' + 36-char UUID: every well-formed topic shares this prefix length, so parsing is
// fixed-offset slicing plus one regex, cheap enough for the per-PUBLISH hot path.
const PREFIX_LENGTH = TOPIC_ROOT.length + 1;
const ID_END = PREFIX_LENGTH + 36;

/**
 * Parses a topic a device published to. Returns undefined for anything that is not one of the
 * device → cloud topics above (including the cloud → device command topic).
 */
export function parseDeviceTopic(topic: string): ParsedDeviceTopic | undefined {
  if (topic.length <= ID_END + 1 || !topic.startsWith('devices/') || topic.charCodeAt(ID_END) !== 0x2f) {
    return undefined;
  }
  const deviceId = topic.slice(PREFIX_LENGTH, ID_END);
  if (!DEVICE_ID_PATTERN.test(deviceId)) return undefined;
  const rest = topic.slice(ID_END + 1);
  switch (rest) {
    case 'diagnostics':
    case 'telemetry':
    case 'state':
    case 'update':
      return { deviceId, kind: rest };
    default:
      break;
  }
  if (!rest.startsWith('commands/') || !rest.endsWith('/result')) return undefined;
  const commandId = rest.slice('commands/'.length, rest.length - '/result'.length);
  if (!isCommandId(commandId)) return undefined;
  return { deviceId, kind: 'command_result', commandId };
}

/** Formats a device → cloud topic; throws GATEWAY_TOPIC_INVALID on a malformed id. */
export function formatDeviceTopic(deviceId: string, kind: DeviceMessageKind, commandId?: string): string {
  assertDeviceId(deviceId);
  if (kind === 'command_result') {
    if (commandId === undefined || !isCommandId(commandId)) {
      throw new FleetkeyError('GATEWAY_TOPIC_INVALID', { detail: 'command_result needs a valid commandId' });
    }
    return `devices/${deviceId}/commands/${commandId}/result`;
  }
  return `devices/${deviceId}/${kind}`;
}

/** Formats the cloud → device command topic. */
export function formatCommandTopic(deviceId: string, commandId: string): string {
  assertDeviceId(deviceId);
  if (!isCommandId(commandId)) {
    throw new FleetkeyError('GATEWAY_TOPIC_INVALID', { detail: 'malformed commandId' });
  }
  return `devices/${deviceId}/commands/${commandId}`;
}

/** Parses a command topic (what the device receives); undefined if it is not one. */
export function parseCommandTopic(topic: string): { deviceId: string; commandId: string } | undefined {
  if (topic.length <= ID_END + 1 || !topic.startsWith('devices/') || topic.charCodeAt(ID_END) !== 0x2f) {
    return undefined;
  }
  const deviceId = topic.slice(PREFIX_LENGTH, ID_END);
  const rest = topic.slice(ID_END + 1);
  if (!DEVICE_ID_PATTERN.test(deviceId) || !rest.startsWith('commands/')) return undefined;
  const commandId = rest.slice('commands/'.length);
  return isCommandId(commandId) ? { deviceId, commandId } : undefined;
}

/** The two filters a device may subscribe to; the first is what the SDK uses. */
export function commandSubscriptionFilters(deviceId: string): readonly [string, string] {
  assertDeviceId(deviceId);
  return [`devices/${deviceId}/commands/+`, `devices/${deviceId}/commands/#`];
}

/** True when `filter` is one of the command filters of `deviceId` (exact match, no other forms). */
export function isOwnCommandFilter(deviceId: string, filter: string): boolean {
  return (
    filter.length === ID_END + '/commands/+'.length &&
    filter.startsWith('devices/') &&
    filter.slice(PREFIX_LENGTH, ID_END) === deviceId &&
    (filter.endsWith('/commands/+') || filter.endsWith('/commands/#'))
  );
}

function assertDeviceId(deviceId: string): void {
  if (!isDeviceId(deviceId)) {
    throw new FleetkeyError('GATEWAY_TOPIC_INVALID', { detail: 'malformed deviceId' });
  }
}

/** Issue 13: the cloud → device topic on which the server asks for an attestation now. */
export function attestationRequestTopic(deviceId: string): string {
  assertDeviceId(deviceId);
  return `devices/${deviceId}/attestation/request`;
}

/** True when `filter` is exactly the device's own attestation request topic (no wildcards). */
export function isOwnAttestationRequestFilter(deviceId: string, filter: string): boolean {
  return filter.length === ID_END + '/attestation/request'.length && filter.startsWith('devices/') && filter.slice(PREFIX_LENGTH, ID_END) === deviceId && filter.endsWith('/attestation/request');
}
