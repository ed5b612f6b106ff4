import type { PeerCertificate } from 'node:tls';
import type { DeviceMessageKind } from '@fleetkey/protocol';
import type { PublishRateStore } from './publish-rate.js';

export type ProtocolVersion = 4 | 5;

export interface GatewayTlsOptions {
  key: string | Buffer;
  cert: string | Buffer;
  /** Trust anchors for client certificates; the chain is verified by Node before any hook runs. */
  ca: (string | Buffer)[];
  /** Ask for (and require) a client certificate: mTLS. With false, devices use username/password. */
  requestCert: boolean;
  /**
   * With requestCert: `true` (default) refuses the handshake without a valid certificate; `false`
   * lets certificate-less devices in to authenticate with a token at CONNECT. Either way the
   * authenticate hook is only ever shown a certificate that verified against `ca`.
   */
  requireCert?: boolean;
  /** PEM CRLs handed to the TLS layer; the authenticate hook remains the authority on revocation. */
  crl?: (string | Buffer)[];
}

export interface GatewayLimits {
  /** Largest MQTT packet accepted (whole packet); bigger → v5 DISCONNECT 0x95, v4 close. */
  maxPacketBytes: number;
  /** Longest topic name or filter accepted. */
  maxTopicLength: number;
  /** From TCP accept to a complete CONNECT (TLS handshake included) [MQTT-3.1.4-1]. */
  connectTimeoutMs: number;
  /** Inbound QoS 1 PUBLISHes unacknowledged at once per connection (v5 Receive Maximum). */
  receiveMaximum: number;
  /** Outbound commands unacknowledged at once per connection (also capped by the device's Receive Maximum). */
  maxInflightPerConn: number;
  /** Commands waiting behind the in-flight window per connection; beyond it sendCommand returns false. */
  maxQueuedCommands: number;
  /** Sustained PUBLISH rate per device, across reconnects (token bucket, burst = one second's worth). */
  maxPublishesPerSecond: number;
  /** Bytes the gateway buffers towards one client before it gives up on that client. */
  maxWriteBufferBytes: number;
  /** Pending accept() calls per connection before the socket stops being read (backpressure). */
  maxPendingStores: number;
  /** Ceiling for the keep-alive a device may ask for; v5 devices are told via Server Keep Alive. */
  maxKeepAliveSeconds: number;
  /** Granularity of the one gateway-wide timer that enforces timeouts. */
  sweepIntervalMs: number;
}

export type AuthRefusalReason = 'not_authorized' | 'bad_credentials' | 'identifier_rejected' | 'server_unavailable';

export interface AuthenticateContext {
  clientId: string;
  username?: string;
  password?: Buffer;
  /**
   * The verified client certificate when the connection is mTLS, in the TLS layer's plain form:
   * getPeerX509Certificate() costs about twice as much per connect and nothing here needs it.
   */
  peerCertificate?: PeerCertificate;
  protocolVersion: ProtocolVersion;
  remoteAddress: string;
}

export type AuthenticateResult =
  | { ok: true; deviceId: string }
  | { ok: false; reason: AuthRefusalReason; detail: string };

export interface AcceptedMessage {
  deviceId: string;
  kind: DeviceMessageKind;
  commandId?: string;
  payload: Buffer;
  qos: 0 | 1;
  receivedAt: Date;
}

/** Why the gateway refused something; the device only ever sees a neutral MQTT code. */
export type RefusalReason =
  | AuthRefusalReason
  | 'client_id_mismatch'
  | 'unsupported_protocol_version'
  | 'bad_authentication_method'
  | 'will_not_allowed'
  | 'topic_not_allowed'
  | 'subscribe_not_allowed'
  | 'qos_not_supported'
  | 'retain_not_supported'
  | 'topic_alias_invalid'
  | 'packet_too_large'
  | 'topic_too_long'
  | 'topic_name_invalid'
  | 'rate_limited'
  | 'receive_maximum_exceeded'
  | 'malformed_packet'
  | 'payload_invalid'
  | 'protocol_error'
  | 'internal_error'
  | 'connect_timeout'
  | 'tls_handshake_failed'
  // Measured-boot containment (issue 13): the device is quarantined.
  | 'quarantined';

export interface RefusalInfo {
  deviceId?: string;
  remoteAddress: string;
  reason: RefusalReason;
  detail: string;
}

export type DisconnectReason =
  | 'client_disconnect'
  | 'socket_closed'
  | 'keepalive_timeout'
  | 'takeover'
  | 'administrative'
  | 'revoked'
  | 'server_shutdown'
  | 'write_buffer_overflow'
  | 'store_failed'
  | 'refused';

/** Reasons an operator (or another module) may give to disconnectDevice. */
export type AdminDisconnectReason = 'administrative' | 'takeover' | 'revoked' | 'server_shutdown';

export interface ConnectInfo {
  protocolVersion: ProtocolVersion;
  remoteAddress: string;
  clientId: string;
  keepAliveSeconds: number;
  sessionPresent: boolean;
}

export interface PendingCommand {
  commandId: string;
  payload: Buffer;
}

export interface GatewayHooks {
  authenticate(ctx: AuthenticateContext): Promise<AuthenticateResult>;
  /** Synchronous content check before anything is queued: a string refuses the PUBLISH (v5 0x99), saying why. */
  validate?(msg: AcceptedMessage): string | null;
  /** Resolves once the message is durably stored; only then is a QoS 1 PUBLISH acknowledged. */
  accept(msg: AcceptedMessage): Promise<void>;
  /** Commands not yet acknowledged by the device, delivered when it (re)subscribes. */
  pendingCommands?(deviceId: string): Promise<PendingCommand[]>;
  /** The device acknowledged a command (PUBACK); reasonCode is 0 unless a v5 device said otherwise. */
  onCommandAcked?(deviceId: string, commandId: string, reasonCode: number): Promise<void>;
  onConnect?(deviceId: string, info: ConnectInfo): void | Promise<void>;
  onDisconnect?(deviceId: string, reason: DisconnectReason): void | Promise<void>;
  onRefusal?(info: RefusalInfo): void | Promise<void>;
  /**
   * Containment (issue 13): a reason when the device is quarantined, null otherwise. Synchronous,
   * on the per-PUBLISH path: commands, diagnostics, telemetry and state are refused, command
   * subscriptions refused and commands held in the store until the device is released.
   */
  contained?(deviceId: string): string | null;
  /** Errors thrown by hooks that have nobody else to report to. */
  onError?(err: unknown, where: string): void;
}

export interface GatewayOptions {
  listen: { host: string; port: number };
  tls?: GatewayTlsOptions;
  /** Plain TCP is used only when this is exactly true and no tls is given. */
  insecure?: boolean;
  limits?: Partial<GatewayLimits>;
  hooks: GatewayHooks;
  /** Where per-device PUBLISH allowances live; default in memory at limits.maxPublishesPerSecond. */
  publishRate?: PublishRateStore;
}

export interface GatewayStats {
  connections: number;
  connecting: number;
  connectsAccepted: number;
  connectsRefused: number;
  messagesIn: number;
  messagesAcked: number;
  messagesRefused: number;
  storeFailures: number;
  pendingStores: number;
  pausedConnections: number;
  commandsSent: number;
  commandsAcked: number;
  disconnects: number;
  tlsFailures: number;
}
