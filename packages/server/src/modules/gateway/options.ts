import type { TlsOptions } from 'node:tls';
import { FleetkeyError, MQTT_LIMITS } from '@fleetkey/protocol';
import type { GatewayLimits, GatewayOptions, GatewayTlsOptions } from './types.js';

export const DEFAULT_LIMITS: GatewayLimits = {
  maxPacketBytes: MQTT_LIMITS.maxPacketBytes,
  maxTopicLength: MQTT_LIMITS.maxTopicLength,
  connectTimeoutMs: MQTT_LIMITS.connectTimeoutMs,
  receiveMaximum: MQTT_LIMITS.receiveMaximum,
  maxInflightPerConn: 32,
  maxQueuedCommands: 256,
  maxPublishesPerSecond: 1000,
  maxWriteBufferBytes: 1024 * 1024,
  maxPendingStores: 256,
  maxKeepAliveSeconds: MQTT_LIMITS.maxKeepAliveSeconds,
  sweepIntervalMs: 500,
};

// Bounds that keep a typo from disabling a protection (0 or a negative would mean "no limit"
// in some comparisons) and respect the protocol's own ranges.
const RANGES: Record<keyof GatewayLimits, readonly [number, number]> = {
  maxPacketBytes: [64, 268_435_455], // largest Remaining Length + header [MQTT-2.2.3]
  maxTopicLength: [16, 65_535], // UTF-8 string length prefix [MQTT-1.5.3]
  connectTimeoutMs: [50, 600_000],
  receiveMaximum: [1, 65_535], // [MQTT-3.2.2.3.3]
  maxInflightPerConn: [1, 65_535],
  maxQueuedCommands: [0, 1_000_000],
  maxPublishesPerSecond: [1, 10_000_000],
  maxWriteBufferBytes: [1024, 1 << 30],
  maxPendingStores: [1, 1_000_000],
  maxKeepAliveSeconds: [1, 65_535], // Server Keep Alive is a two-byte integer
  sweepIntervalMs: [10, 10_000],
};

/** Validates the options at construction: a gateway with an invalid configuration never listens. */
export function resolveLimits(partial: Partial<GatewayLimits> | undefined): GatewayLimits {
  const limits = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(limits) as (keyof GatewayLimits)[]) {
    const value = partial?.[key];
    if (value === undefined) continue;
    const [min, max] = RANGES[key];
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new FleetkeyError('CONFIG_INVALID', { detail: `gateway limit ${key} must be an integer in [${min}, ${max}]` });
    }
    limits[key] = value;
  }
  return limits;
}

// TLS 1.2 suites restricted to ECDHE with AEAD, so every session has forward secrecy; TLS 1.3
// suites are all (EC)DHE by construction (RFC 8446 §4.2.8) and keep Node's defaults.
const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

const TLS13_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

export function tlsServerOptions(tls: GatewayTlsOptions, handshakeTimeoutMs: number): TlsOptions {
  if (tls.ca.length === 0 && tls.requestCert) {
    throw new FleetkeyError('CONFIG_INVALID', { detail: 'mTLS needs at least one trust anchor in tls.ca' });
  }
  return {
    ...tlsContextOptions(tls),
    requestCert: tls.requestCert,
    // A required certificate is verified before any MQTT byte is read; an optional one is checked
    // (socket.authorized) before the authenticate hook may see it.
    rejectUnauthorized: tls.requestCert && tls.requireCert !== false,
    handshakeTimeout: handshakeTimeoutMs,
  };
}

/** The part of the TLS options that setSecureContext can replace on a live server. */
export function tlsContextOptions(tls: GatewayTlsOptions): TlsOptions {
  return {
    key: tls.key,
    cert: tls.cert,
    ca: tls.ca,
    ...(tls.crl !== undefined && tls.crl.length > 0 ? { crl: tls.crl } : {}),
    minVersion: 'TLSv1.2',
    ciphers: `${TLS13_SUITES}:${TLS12_CIPHERS}`,
    honorCipherOrder: true,
  };
}

/** Plain TCP only on an explicit `insecure: true`; anything else without TLS is refused. */
export function assertTransport(options: GatewayOptions): void {
  if (options.tls === undefined && options.insecure !== true) {
    throw new FleetkeyError('GATEWAY_TLS_REQUIRED', { detail: 'no tls options and insecure is not true' });
  }
  if (options.tls !== undefined && options.insecure === true) {
    throw new FleetkeyError('CONFIG_INVALID', { detail: 'tls and insecure are mutually exclusive' });
  }
}
