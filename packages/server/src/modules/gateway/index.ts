/**
 * Device gateway engine: MQTT 3.1.1 and 5 over (m)TLS on top of mqtt-packet, with our own
 * connection handling and explicit flow control. It knows nothing of the store: everything it
 * needs comes through hooks, wired by the composition root.
 *
 * ```ts
 * const gw = await createGateway({
 *   listen: { host: '0.0.0.0', port: 8883 },
 *   tls: { key, cert, ca: [deviceCa], requestCert: true },
 *   hooks: {
 *     authenticate: async ({ peerCertificate, clientId }) => ({ ok: true, deviceId }),
 *     accept: async (msg) => { await telemetry.store(msg); },   // resolves = durable → PUBACK
 *     pendingCommands: (id) => commands.pending(id),
 *     onCommandAcked: (id, cmd) => commands.acked(id, cmd),
 *     onRefusal: (info) => audit.append('gateway.refused', info),
 *   },
 * });
 * gw.sendCommand(deviceId, 'cmd-1', payload);       // false → stays pending in the store
 * gw.disconnectDevice(deviceId, 'revoked');          // v5 devices get DISCONNECT 0x87
 * ```
 *
 * API:
 * - `createGateway(options: GatewayOptions): Promise<Gateway>` — validates options (throws
 *   CONFIG_INVALID / GATEWAY_TLS_REQUIRED), listens, resolves when bound.
 * - `Gateway.address(): AddressInfo`
 * - `Gateway.close(): Promise<void>` — v5 DISCONNECT 0x8B to all, then closes.
 * - `Gateway.sendCommand(deviceId, commandId, payload): boolean` — true when queued to a live
 *   subscribed session; throws GATEWAY_TOPIC_INVALID for a malformed commandId.
 * - `Gateway.disconnectDevice(deviceId, reason): number` — administrative 0x98, takeover 0x8E,
 *   revoked 0x87, server_shutdown 0x8B; returns sessions closed (0 or 1).
 * - `Gateway.isConnected(deviceId): boolean`, `connectionCount(): number`, `stats(): GatewayStats`
 * - `Gateway.updateTls(tls)` — new key/cert/CA/CRL for new handshakes.
 *
 * Behaviour (see the files for the clauses): CONNECT first and within connectTimeoutMs; client id
 * must equal the authenticated device id; one session per device (takeover); CONNACK Maximum QoS 1
 * and QoS 2 refused; publish/subscribe only on the device's own topics; PUBACK only after accept()
 * resolves, in order; reading paused while maxPendingStores accepts are pending; write buffer,
 * packet size, topic length, publish rate (per device, across reconnects: publish-rate.ts), receive
 * maximum and keep-alive enforced; sessions hold only the command subscription (sessions.ts). Every
 * frame is checked on its raw bytes before it is decoded (frame-check.ts), and a fault while
 * serving a connection ends that connection (v5 0x83), never the process (connection.ts).
 */
export { createGateway } from './gateway.js';
export type { Gateway } from './gateway.js';
export { DEFAULT_LIMITS } from './options.js';
export { MemoryPublishRate, type PublishRateStore } from './publish-rate.js';
export type {
  AcceptedMessage,
  AdminDisconnectReason,
  AuthenticateContext,
  AuthenticateResult,
  AuthRefusalReason,
  ConnectInfo,
  DisconnectReason,
  GatewayHooks,
  GatewayLimits,
  GatewayOptions,
  GatewayStats,
  GatewayTlsOptions,
  PendingCommand,
  ProtocolVersion,
  RefusalInfo,
  RefusalReason,
} from './types.js';
