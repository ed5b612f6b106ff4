/**
 * The gateway: listener, the registry of live connections (one per device), the single sweep
 * timer that enforces every timeout, and the operations other modules call.
 */
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { attestationRequestTopic, FleetkeyError, isCommandId, REASON_V5 } from '@fleetkey/protocol';
import { enqueueCommand } from './commands.js';
import { Connection, State } from './connection.js';
import { newStats, type GatewayCore } from './core.js';
import { assertTransport, resolveLimits, tlsContextOptions, tlsServerOptions } from './options.js';
import { MemoryPublishRate } from './publish-rate.js';
import { SessionStore } from './sessions.js';
import type { AdminDisconnectReason, GatewayOptions, GatewayStats, GatewayTlsOptions, RefusalInfo } from './types.js';

export interface Gateway {
  /** Where the listener is bound (useful with port 0). */
  address(): AddressInfo;
  /** Stops accepting, tells v5 devices 0x8B Server shutting down, closes every connection. */
  close(): Promise<void>;
  /**
   * Queues a command to the device's live, subscribed session. False when the device is offline,
   * not subscribed or its queue is full: the command then stays pending in the store and goes
   * out through pendingCommands() when the device (re)subscribes.
   */
  sendCommand(deviceId: string, commandId: string, payload: Buffer): boolean;
  /**
   * Issue 13: asks the device to attest now (QoS 0 PUBLISH on devices/{id}/attestation/request).
   * False when it is offline or does not hold that subscription.
   */
  requestAttestation(deviceId: string, payload: Buffer): boolean;
  /** Closes the device's session (v5 DISCONNECT with the matching reason code); returns how many. */
  disconnectDevice(deviceId: string, reason: AdminDisconnectReason): number;
  isConnected(deviceId: string): boolean;
  /** Whether the listener accepts connections (readiness). */
  listening(): boolean;
  connectionCount(): number;
  stats(): GatewayStats;
  /** Replaces key, certificate, trust anchors and CRLs for new handshakes (live connections stay). */
  updateTls(tls: GatewayTlsOptions): void;
}

const ADMIN_CODES: Record<AdminDisconnectReason, number> = {
  administrative: REASON_V5.administrativeAction,
  takeover: REASON_V5.sessionTakenOver,
  revoked: REASON_V5.notAuthorized,
  server_shutdown: REASON_V5.serverShuttingDown,
};

// Sockets that got end() but whose peer never closes are destroyed after this long.
const CLOSE_GRACE_MS = 2000;

/** Creates the gateway and resolves once it listens. Options are validated first. */
export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  assertTransport(options);
  const limits = resolveLimits(options.limits);
  const hooks = options.hooks;
  if (typeof hooks?.authenticate !== 'function' || typeof hooks.accept !== 'function') {
    // No default authenticate: a gateway that forgot it fails closed (STYLE §3).
    throw new FleetkeyError('CONFIG_INVALID', { detail: 'gateway hooks.authenticate and hooks.accept are required' });
  }

  let uncorkList: Connection[] = [];
  let uncorkScheduled = false;
  const flushUncork = (): void => {
    const list = uncorkList;
    uncorkList = [];
    uncorkScheduled = false;
    for (const c of list) c.uncork();
  };

  const core: GatewayCore = {
    limits,
    hooks,
    stats: newStats(),
    devices: new Map(),
    conns: new Set(),
    sessions: new SessionStore(),
    publishRate: options.publishRate ?? new MemoryPublishRate(limits.maxPublishesPerSecond),
    closing: false,
    refuse(info: RefusalInfo): void {
      const hook = hooks.onRefusal;
      if (hook === undefined) return;
      try {
        void Promise.resolve(hook(info)).catch((err: unknown) => core.reportError(err, 'onRefusal'));
      } catch (err) {
        core.reportError(err, 'onRefusal');
      }
    },
    reportError(err: unknown, where: string): void {
      try {
        hooks.onError?.(err, where);
      } catch {
        // An error reporter that throws has nowhere left to report to.
      }
    },
    scheduleUncork(conn: Connection): void {
      uncorkList.push(conn);
      if (!uncorkScheduled) {
        uncorkScheduled = true;
        setImmediate(flushUncork);
      }
    },
  };

  const onSocket = (socket: Socket): void => {
    if (core.closing) {
      socket.destroy();
      return;
    }
    core.conns.add(new Connection(socket, core, Date.now()));
  };

  let server: Server;
  if (options.tls !== undefined) {
    const tlsServer = createTlsServer(tlsServerOptions(options.tls, limits.connectTimeoutMs));
    tlsServer.on('secureConnection', (socket: TLSSocket) => onSocket(socket));
    tlsServer.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
      core.stats.tlsFailures++;
      core.refuse({ remoteAddress: socket.remoteAddress ?? 'unknown', reason: 'tls_handshake_failed', detail: err.code ?? err.message });
      socket.destroy();
    });
    server = tlsServer;
  } else {
    server = createTcpServer(onSocket);
  }
  server.on('error', (err) => core.reportError(err, 'listener'));

  // One timer for the whole gateway: connect timeout [MQTT-3.1.4-1 "within a reasonable amount
  // of time"], keep-alive at 1.5× [MQTT-3.1.2-24], teardown of half-closed sockets, session expiry.
  let sweeps = 0;
  const sweep = (): void => {
    const now = Date.now();
    for (const c of core.conns) {
      try {
        sweepOne(c, now);
      } catch (err) {
        c.fault(err, 'sweep');
      }
    }
    if (++sweeps % 4 === 0) core.publishRate.prune(now);
    if (sweeps % 120 === 0) core.sessions.prune(now);
  };
  const sweepOne = (c: Connection, now: number): void => {
    if (c.state === State.AwaitingConnect || c.state === State.Authenticating) {
      if (now - c.createdAt > limits.connectTimeoutMs) {
        c.refuse('connect_timeout', `no CONNACK after ${limits.connectTimeoutMs} ms`);
        if (c.state === State.Authenticating) core.stats.connectsRefused++;
        c.destroy('refused');
      }
    } else if (c.state === State.Connected) {
      if (!c.paused && c.keepAliveMs > 0 && now - c.lastActivity > c.keepAliveMs * 1.5) {
        c.close('keepalive_timeout', REASON_V5.keepAliveTimeout);
      }
    } else if (now - c.closingSince > CLOSE_GRACE_MS) {
      c.socket.destroy();
    }
  };
  const timer = setInterval(sweep, limits.sweepIntervalMs);
  timer.unref();

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(options.listen.port, options.listen.host, () => {
      server.off('error', onError);
      resolve();
    });
  }).catch((err: unknown) => {
    clearInterval(timer);
    throw err;
  });

  const disconnectDevice = (deviceId: string, reason: AdminDisconnectReason): number => {
    const conn = core.devices.get(deviceId);
    if (conn === undefined) return 0;
    conn.close(reason === 'server_shutdown' ? 'server_shutdown' : reason, ADMIN_CODES[reason]);
    return 1;
  };

  return {
    address: () => server.address() as AddressInfo,
    listening: () => server.listening,
    sendCommand(deviceId: string, commandId: string, payload: Buffer): boolean {
      if (!isCommandId(commandId)) throw new FleetkeyError('GATEWAY_TOPIC_INVALID', { detail: 'malformed commandId' });
      const conn = core.devices.get(deviceId);
      if (conn === undefined) return false;
      try {
        return enqueueCommand(conn, commandId, payload, false);
      } catch (err) {
        conn.fault(err, 'sendCommand');
        return false;
      }
    },
    requestAttestation(deviceId: string, payload: Buffer): boolean {
      const conn = core.devices.get(deviceId);
      if (conn === undefined || conn.state !== State.Connected || conn.session?.attestationRequests !== true) return false;
      try {
        conn.sendPacket({ cmd: 'publish', topic: attestationRequestTopic(deviceId), payload, qos: 0, retain: false, dup: false });
        return true;
      } catch (err) {
        conn.fault(err, 'requestAttestation');
        return false;
      }
    },
    disconnectDevice,
    isConnected: (deviceId: string) => core.devices.has(deviceId),
    connectionCount: () => core.devices.size,
    stats: () => ({ ...core.stats }),
    updateTls(tls: GatewayTlsOptions): void {
      if (!('setSecureContext' in server)) throw new FleetkeyError('CONFIG_INVALID', { detail: 'gateway runs without TLS' });
      (server as ReturnType<typeof createTlsServer>).setSecureContext(tlsContextOptions(tls));
    },
    async close(): Promise<void> {
      if (core.closing) return;
      core.closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const c of [...core.conns]) {
        if (c.state === State.Connected) c.close('server_shutdown', REASON_V5.serverShuttingDown);
        else c.destroy('server_shutdown');
      }
      const deadline = Date.now() + CLOSE_GRACE_MS;
      while (core.conns.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      for (const c of [...core.conns]) c.socket.destroy();
      clearInterval(timer);
      await closed;
    },
  };
}
