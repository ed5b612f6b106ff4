import { CONNACK_V4, REASON_V5 } from '@fleetkey/protocol';
import { UNTRUSTED_SERVER } from '../internal/untrusted-server.js';

/**
 * Why a connection stopped for good. Reconnecting cannot fix any of these: the gateway has said
 * who this device is not allowed to be, or the device cannot trust the server it reached.
 */
export type StopReason =
  /** The server dropped the session with DISCONNECT 0x98 (administrative action: revoked or replaced). */
  | 'revoked'
  /** CONNACK 0x87 / 3.1.1 return code 5: the credential is known but not allowed (revoked, suspended). */
  | 'not-authorized'
  /** CONNACK 0x86 / 3.1.1 return code 4, or 0x8C: the credential itself is wrong. */
  | 'bad-credentials'
  /** CONNACK 0x85 / 3.1.1 return code 2: the client id is refused. */
  | 'identifier-rejected'
  /** CONNACK 0x8A: banned. */
  | 'banned'
  /** The gateway's certificate does not chain to the bundle's CAs (or names another host). */
  | 'untrusted-server'
  /** `close()` was called. */
  | 'closed';

/**
 * CONNACK codes that end the reconnect loop. MQTT 3.1.1 return codes are 1..5 [MQTT-3.2.2.3]
 * and MQTT 5 failure reason codes are ≥ 0x80 [MQTT 5.0 §3.2.2.2], so one table serves both.
 */
const FINAL_CONNACK: ReadonlyMap<number, StopReason> = new Map<number, StopReason>([
  [CONNACK_V4.identifierRejected, 'identifier-rejected'],
  [CONNACK_V4.badUsernameOrPassword, 'bad-credentials'],
  [CONNACK_V4.notAuthorized, 'not-authorized'],
  [REASON_V5.clientIdentifierNotValid, 'identifier-rejected'],
  [REASON_V5.badUserNameOrPassword, 'bad-credentials'],
  [REASON_V5.notAuthorized, 'not-authorized'],
  [0x8a, 'banned'], // Banned [MQTT 5.0 §3.2.2.2]
  [REASON_V5.badAuthenticationMethod, 'bad-credentials'],
]);

/** The stop reason for an error MQTT.js reported on a connection attempt, or undefined to retry. */
export function finalReasonOf(error: unknown): StopReason | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  const code = (error as { code: unknown }).code;
  if (typeof code === 'number') return FINAL_CONNACK.get(code);
  if (typeof code === 'string' && UNTRUSTED_SERVER.has(code)) return 'untrusted-server';
  return undefined;
}

/**
 * DISCONNECT reason codes from the server that end the loop. 0x98 is what Fleetkey sends when
 * it revokes a device or its certificate, or rebinds its name with `revokeOld`; DESIGN.md §3
 * ("Revoke") says the reason code tells the device not to retry. A takeover (0x8E) or a server
 * shutdown (0x8B) is retried with backoff.
 */
export function finalDisconnectReason(reasonCode: number | undefined): StopReason | undefined {
  return reasonCode === REASON_V5.administrativeAction ? 'revoked' : undefined;
}
