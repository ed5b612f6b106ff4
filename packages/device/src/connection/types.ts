import { FleetkeyError, type ErrorCode } from '@fleetkey/protocol';
import type { BundleKeystoreOptions } from '../provisioning/bundle-keystore.js';
import type { AuthMode } from './credentials.js';
import type { StopReason } from './stop-reasons.js';

export interface ConnectOptions extends BundleKeystoreOptions {
  /** MQTT 5 (default) or 3.1.1. */
  protocolVersion?: 4 | 5;
  /** Instead of the gateway URL recorded at provisioning (same CA trust applies). */
  mqttUrl?: string;
  /**
   * Several gateway endpoints (the nodes of a cluster, issue 15), tried in turn: each failed attempt
   * or lost connection moves to the next, with the same full-jitter backoff between attempts.
   * Takes precedence over `mqttUrl`. Every URL must be mqtts:.
   */
  mqttUrls?: readonly string[];
  /** 'auto' (default): SAS for symmetric bundles, mTLS otherwise. */
  auth?: AuthMode | 'auto';
  /** Full-jitter backoff between attempts: delay = random(0, min(max, base·2^(n−1))). Defaults 1 s / 60 s. */
  reconnect?: { baseDelayMs?: number; maxDelayMs?: number };
  /** Uniform in [0, 1): injectable so a test can pin the jitter. */
  random?: () => number;
  /** Clock for SAS expiries and renewal decisions. */
  now?: () => Date;
  /** CONNACK deadline per attempt. Default 10 s. */
  connectTimeoutMs?: number;
  /** MQTT keep-alive. Default 60 s. */
  keepaliveSeconds?: number;
  /** Lifetime of each SAS connect token. Default 15 min; the gateway refuses more than 1 h. */
  sasLifetimeMs?: number;
  /** Renew the operational certificate when due (mTLS only). Default true. */
  autoRenew?: boolean;
  /**
   * The encrypted offline buffer (`<bundle>/offline/`). Sealed with the bundle's machine secret,
   * or the keystore passphrase, or `key`; `false` turns buffering off (sends while offline then
   * reject with UNAVAILABLE).
   */
  offline?: false | { maxBytes?: number; key?: Uint8Array };
  /** Resolve `connect()` only after the first CONNACK (default true); false resolves at once. */
  waitForConnection?: boolean;
  /** Per device-plane HTTP request (renewal). Default 30 s. */
  requestTimeoutMs?: number;
  /**
   * Issue 13: subscribe to `devices/{id}/attestation/request` and emit `attestation-request` when
   * the server asks for an attestation (wire it to an attester's `attestNow()`). Default false.
   */
  attestationRequests?: boolean;
}

/** A command from the cloud: `devices/{id}/commands/{commandId}`, payload `{id,type,payload,expiresAt}`. */
export interface DeviceCommand {
  readonly id: string;
  readonly type: string;
  readonly payload: unknown;
  readonly expiresAt: string | null;
}

/** Returns the result to publish on the result topic, or undefined to answer later with `sendCommandResult`. */
export type CommandHandler = (command: DeviceCommand) => unknown;

export type SendResult = { readonly delivered: true } | { readonly delivered: false; readonly buffered: true; readonly seq: number };

export interface StopInfo {
  readonly reason: StopReason;
  /** The CONNACK or DISCONNECT reason code, when the gateway gave one. */
  readonly code?: number;
  readonly detail?: string;
}

export interface DeviceConnectionEvents {
  connected: [{ attempt: number; auth: AuthMode; serial: string | undefined; /** The gateway endpoint this connection reached. */ endpoint: string }];
  disconnected: [{ reasonCode: number | undefined; error: string | undefined }];
  reconnecting: [{ attempt: number; delayMs: number }];
  stopped: [StopInfo];
  command: [DeviceCommand];
  'attestation-request': [];
  renewed: [{ serial: string; notAfter: string; renewAfter: string }];
  'renewal-failed': [{ error: unknown; retryAt: Date }];
  /** Something went wrong that the connection survives (a refused buffered message, a bad command). */
  warning: [{ message: string; error?: unknown }];
}

const STOP_CODES: Record<StopReason, ErrorCode> = {
  revoked: 'FORBIDDEN',
  'not-authorized': 'FORBIDDEN',
  banned: 'FORBIDDEN',
  'bad-credentials': 'UNAUTHENTICATED',
  'identifier-rejected': 'UNAUTHENTICATED',
  'untrusted-server': 'UNAVAILABLE',
  closed: 'UNAVAILABLE',
};

/** The connection stopped for good (see {@link StopReason}); sends and `connect()` reject with it. */
export class ConnectionStoppedError extends FleetkeyError {
  readonly reason: StopReason;
  readonly reasonCode: number | undefined;

  constructor(info: StopInfo) {
    super(STOP_CODES[info.reason], { detail: `device connection stopped: ${info.reason}${info.code === undefined ? '' : ` (0x${info.code.toString(16)})`}${info.detail === undefined ? '' : `: ${info.detail}`}` });
    this.name = 'ConnectionStoppedError';
    this.reason = info.reason;
    this.reasonCode = info.code;
  }
}
