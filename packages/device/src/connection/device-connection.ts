import { X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { FleetkeyError, MQTT_LIMITS, attestationRequestTopic, commandSubscriptionFilters, formatDeviceTopic, type DeviceMessageKind, type UpdateReport } from '@fleetkey/protocol';
import type { Keystore } from '../keystore/keystore.js';
import type { OfflineBuffer } from '../offline/offline-buffer.js';
import { backoffDelay, type RetryPolicy } from '../provisioning/backoff.js';
import type { LoadedBundle, ProvisionedRecord } from '../provisioning/bundle.js';
import { DEFAULT_SAS_LIFETIME_MS, mtlsCredentials, sasCredentials, wipe, type AttemptCredentials, type AuthMode } from './credentials.js';
import { renewalDueAt, renewOperationalCertificate } from './renewal.js';
import { finalDisconnectReason, finalReasonOf } from './stop-reasons.js';
import { parseCommand, runHandler } from './commands.js';
import { PublishWindow, type Outcome } from './publish-window.js';
import { ConnectionStoppedError, type CommandHandler, type ConnectOptions, type DeviceConnectionEvents, type SendResult, type StopInfo } from './types.js';


/** setTimeout's ceiling (2^31−1 ms, ~24.8 days); longer waits re-check when they fire. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const SEEN_COMMANDS = 1024;
const DRAIN_BATCH = 256;
const MIN_RENEWAL_GAP_MS = 60_000;

/** @internal What `connect()` hands the connection. */
export interface ConnectionInit {
  bundle: LoadedBundle;
  record: ProvisionedRecord;
  keystore: Keystore;
  buffer: OfflineBuffer | undefined;
  auth: AuthMode;
  /** One or more gateway endpoints, tried in turn (issue 15). */
  mqttUrls: readonly string[];
  options: ConnectOptions;
}

/**
 * A device's live link to the Fleetkey gateway: MQTT over TLS, reconnecting with full-jitter
 * backoff until the gateway says the device is not allowed (then `stopped`), buffering what it
 * produces while offline in the encrypted {@link OfflineBuffer} and replaying it in order, and
 * renewing its operational certificate at two thirds of its lifetime. Create it with `connect()`.
 *
 * Every attempt builds a fresh MQTT.js client (MQTT.js's own reconnect is off) so each one
 * presents fresh credentials: a new SAS token, or the certificate renewal just wrote.
 */
export class DeviceConnection extends EventEmitter<DeviceConnectionEvents> {
  readonly deviceId: string;
  readonly auth: AuthMode;
  readonly #bundle: LoadedBundle;
  #record: ProvisionedRecord;
  readonly #keystore: Keystore;
  readonly #buffer: OfflineBuffer | undefined;
  readonly #urls: readonly string[];
  #urlIndex = 0;
  readonly #o: ConnectOptions;
  readonly #policy: RetryPolicy;
  readonly #now: () => Date;
  #client: MqttClient | undefined;
  #connected = false;
  #serial: string | undefined;
  #failures = 0;
  #attempts = 0;
  #stopped: StopInfo | undefined;
  #closing = false;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #renewTimer: NodeJS.Timeout | undefined;
  #immediate = false;
  #window: PublishWindow | undefined;
  readonly #sends = new Set<Promise<unknown>>();
  #appending = 0;
  #draining: Promise<void> | undefined;
  #renewing: Promise<ProvisionedRecord> | undefined;
  #handler: CommandHandler | undefined;
  readonly #seen = new Set<string>();
  #firstConnect: { resolve(): void; reject(e: Error): void; promise: Promise<void> };

  /** @internal Use `connect()`. */
  constructor(init: ConnectionInit) {
    super();
    this.#bundle = init.bundle;
    this.#record = init.record;
    this.#keystore = init.keystore;
    this.#buffer = init.buffer;
    this.#urls = init.mqttUrls;
    this.#o = init.options;
    this.auth = init.auth;
    this.deviceId = init.bundle.device.deviceId;
    this.#now = init.options.now ?? (() => new Date());
    const r = init.options.reconnect ?? {};
    this.#policy = { maxAttempts: Infinity, baseDelayMs: r.baseDelayMs ?? 1000, maxDelayMs: r.maxDelayMs ?? 60_000, maxElapsedMs: Infinity };
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    promise.catch(() => undefined); // observed through ready(); never an unhandled rejection
    this.#firstConnect = { resolve, reject, promise };
  }

  /** @internal Starts the first attempt and the renewal timer. */
  start(): void {
    this.#scheduleRenewal();
    void this.#attempt();
  }

  /** Resolves at the first CONNACK; rejects with {@link ConnectionStoppedError} if stopped before. */
  ready(): Promise<void> {
    return this.#firstConnect.promise;
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** Why the connection stopped for good, or undefined while it runs. */
  get stopped(): StopInfo | undefined {
    return this.#stopped;
  }

  /** Serial of the operational certificate presented by the current (or last) mTLS connection. */
  get certificateSerial(): string | undefined {
    return this.#serial;
  }

  /** The current provisioned record (certificate, chain, notAfter, renewAfter). */
  get provisioned(): ProvisionedRecord {
    return this.#record;
  }

  /** Messages waiting in the offline buffer. */
  get buffered(): number {
    return this.#buffer?.stats().records ?? 0;
  }

  /** Business data, stored by the server under the device's bound name. QoS 1. */
  sendDiagnostics(body: unknown): Promise<SendResult> {
    return this.#track(this.#send('diagnostics', body));
  }

  /** Internal telemetry, stored under the device. QoS 1. */
  sendTelemetry(body: unknown): Promise<SendResult> {
    return this.#track(this.#send('telemetry', body));
  }

  /** Reported state. QoS 1. */
  sendState(body: unknown): Promise<SendResult> {
    return this.#track(this.#send('state', body));
  }

  /**
   * An update report on `devices/{id}/update` (issue 12 contract, {@link UpdateReport}). QoS 1,
   * buffered while offline like the rest, so a `failed` or `installed` outcome is never lost.
   */
  sendUpdateReport(report: UpdateReport): Promise<SendResult> {
    return this.#track(this.#send('update', report));
  }

  /** The outcome of command `commandId` (done automatically for what a handler returns). */
  sendCommandResult(commandId: string, result: unknown): Promise<SendResult> {
    return this.#track(this.#send('command_result', result, commandId));
  }

  /** Sets the command handler; returns a function that removes it. */
  onCommand(handler: CommandHandler): () => void {
    this.#handler = handler;
    return () => {
      if (this.#handler === handler) this.#handler = undefined;
    };
  }

  /** When renewal is due (server's renewAfter, else 2/3 of the certificate's lifetime). */
  renewalDueAt(): Date {
    return renewalDueAt(this.#record);
  }

  /** Renews if due by the connection's clock; true when it renewed. */
  async renewIfDue(): Promise<boolean> {
    if (this.#now().getTime() < this.renewalDueAt().getTime()) return false;
    await this.renewCertificate();
    return true;
  }

  /**
   * Renews the operational certificate now (new key, CSR, POST /device/v1/renew over mTLS) and
   * reconnects with it. Concurrent calls share one renewal.
   * @throws ProvisioningRefusedError (CERT_RENEWAL_REFUSED) | TransientProvisioningError | FleetkeyError
   */
  renewCertificate(): Promise<ProvisionedRecord> {
    if (this.auth !== 'mtls') return Promise.reject(new FleetkeyError('CONFIG_INVALID', { detail: 'certificate renewal applies to mTLS connections' }));
    this.#renewing ??= (async () => {
      try {
        const next = await renewOperationalCertificate(this.#bundle, this.#record, this.#keystore, {
          now: this.#now,
          ...(this.#o.requestTimeoutMs === undefined ? {} : { timeoutMs: this.#o.requestTimeoutMs }),
        });
        this.#record = next;
        const serial = new X509Certificate(next.certificatePem).serialNumber.toLowerCase();
        this.emit('renewed', { serial, notAfter: next.notAfter, renewAfter: next.renewAfter });
        this.#scheduleRenewal(true);
        this.#reconnectNow();
        return next;
      } finally {
        this.#renewing = undefined;
      }
    })();
    return this.#renewing;
  }

  /**
   * Waits until every send has been PUBACKed or buffered and, while connected, the buffer is
   * empty; gives up after `timeoutMs`. Returns how many messages are still buffered.
   */
  async flush(timeoutMs = 10_000): Promise<{ buffered: number }> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      await Promise.allSettled([...this.#sends]);
      const idle = (this.#window?.size ?? 0) === 0 && this.#appending === 0 && this.#draining === undefined;
      if (idle && (this.buffered === 0 || !this.#connected)) break;
      if (Date.now() > end || this.#stopped !== undefined) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    return { buffered: this.buffered };
  }

  /** Disconnects cleanly (DISCONNECT 0x00), keeps unsent messages buffered, releases the keystore. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    clearTimeout(this.#reconnectTimer);
    clearTimeout(this.#renewTimer);
    const c = this.#client;
    // A clean DISCONNECT when connected; a connection still being set up is just dropped.
    if (c !== undefined) await new Promise<void>((r) => c.end(!this.#connected, {}, () => r()));
    this.#onClose(c);
    await Promise.allSettled([...this.#sends]);
    await this.#draining?.catch(() => undefined);
    await this.#renewing?.catch(() => undefined);
    this.#stop({ reason: 'closed' });
    await this.#buffer?.close();
    await this.#keystore.close();
  }

  // --- sending ---------------------------------------------------------------------------------

  #track<T>(p: Promise<T>): Promise<T> {
    this.#sends.add(p);
    const done = (): void => void this.#sends.delete(p);
    p.then(done, done);
    return p;
  }

  async #send(kind: DeviceMessageKind, body: unknown, commandId?: string): Promise<SendResult> {
    if (this.#stopped !== undefined || this.#closing) throw new ConnectionStoppedError(this.#stopped ?? { reason: 'closed' });
    const json = JSON.stringify(body);
    if (json === undefined) throw new TypeError('message body must be JSON-serialisable');
    const payload = Buffer.from(json);
    const topic = formatDeviceTopic(this.deviceId, kind, commandId);
    const client = this.#client;
    // Anything already buffered goes first: a live send may not overtake it.
    if (client !== undefined && this.#connected && !this.#backlog()) {
      const o = await this.#publish(client, topic, payload);
      if (o.kind === 'acked') return { delivered: true };
      if (o.kind === 'refused') throw refusal(o.code);
    }
    return this.#enqueue(kind, payload, commandId);
  }

  #backlog(): boolean {
    return this.#appending > 0 || this.#draining !== undefined || this.buffered > 0;
  }

  #publish(client: MqttClient, topic: string, payload: Buffer): Promise<Outcome> {
    const w = this.#window;
    return w !== undefined && w.client === client ? w.publish(topic, payload) : Promise.resolve({ kind: 'lost' });
  }

  async #enqueue(kind: DeviceMessageKind, payload: Buffer, commandId?: string): Promise<SendResult> {
    // Also while closing: a PUBLISH lost by the closing connection is kept for the next run.
    if (this.#buffer === undefined) {
      throw new FleetkeyError('UNAVAILABLE', { detail: 'not connected and offline buffering is off' });
    }
    this.#appending++;
    try {
      const { seq } = await this.#buffer.append(kind, payload, commandId === undefined ? {} : { commandId });
      return { delivered: false, buffered: true, seq };
    } finally {
      this.#appending--;
      this.#kickDrain();
    }
  }

  #kickDrain(): void {
    const buffer = this.#buffer;
    const client = this.#client;
    if (buffer === undefined || client === undefined || !this.#connected || this.#draining !== undefined || this.#closing) return;
    if (buffer.stats().records === 0) return;
    this.#draining = (async () => {
      for (;;) {
        const { delivered, remaining } = await buffer.drain(
          async (m) => {
            if (client !== this.#client || !this.#connected) return false;
            const o = await this.#publish(client, formatDeviceTopic(this.deviceId, m.kind, m.commandId), m.payload);
            if (o.kind === 'refused') this.emit('warning', { message: `buffered ${m.kind} #${m.seq} refused by the gateway (0x${o.code.toString(16)}); dropped` });
            return o.kind !== 'lost';
          },
          { max: DRAIN_BATCH },
        );
        if (remaining === 0 || delivered === 0) return;
      }
    })()
      .catch((error: unknown) => void this.emit('warning', { message: 'offline buffer replay failed', error }))
      .finally(() => {
        this.#draining = undefined;
        if (this.buffered > 0) this.#kickDrain();
      });
  }

  // --- connecting ------------------------------------------------------------------------------

  async #attempt(): Promise<void> {
    if (this.#stopped !== undefined || this.#closing) return;
    this.#attempts++;
    let creds: AttemptCredentials;
    try {
      creds = this.auth === 'mtls' ? await mtlsCredentials(this.#bundle, this.#keystore, this.#record) : await sasCredentials(this.#bundle, this.#now(), this.#o.sasLifetimeMs ?? DEFAULT_SAS_LIFETIME_MS);
    } catch (error) {
      this.emit('warning', { message: 'cannot load connection credentials', error });
      return this.#scheduleReconnect();
    }
    if (this.#stopped !== undefined || this.#closing) return wipe(creds);
    const options: IClientOptions = {
      clientId: this.deviceId, // [MQTT-3.1.3-3]; the gateway requires it to equal the authenticated id
      protocolVersion: this.#o.protocolVersion ?? 5,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: this.#o.connectTimeoutMs ?? 10_000,
      keepalive: this.#o.keepaliveSeconds ?? MQTT_LIMITS.defaultKeepAliveSeconds,
      ca: this.#bundle.caBundlePem,
      rejectUnauthorized: true,
      ...(creds.kind === 'mtls' ? { cert: creds.certPem, key: creds.keyPem } : { username: creds.username, password: creds.password }),
    };
    let client: MqttClient;
    try {
      client = mqtt.connect(this.#urls[this.#urlIndex % this.#urls.length]!, options);
    } catch (error) {
      wipe(creds);
      this.emit('warning', { message: 'cannot start an MQTT connection', error });
      return this.#scheduleReconnect();
    }
    this.#client = client;
    let final: StopInfo | undefined;
    let lastError: string | undefined;
    let disconnectCode: number | undefined;
    client.on('connect', (connack) => {
      wipe(creds);
      if (this.#client !== client) return;
      const limit = connack.properties?.receiveMaximum ?? MQTT_LIMITS.receiveMaximum;
      this.#window = new PublishWindow(client, Math.max(1, Math.min(limit, MQTT_LIMITS.receiveMaximum)));
      this.#connected = true;
      this.#failures = 0;
      this.#serial = creds.kind === 'mtls' ? creds.serial : undefined;
      client.subscribe(commandSubscriptionFilters(this.deviceId)[0], { qos: 1 }, (err, granted) => {
        if (err !== null || (granted?.[0]?.qos ?? 0x80) >= 0x80) this.emit('warning', { message: 'command subscription refused', error: err ?? undefined });
      });
      if (this.#o.attestationRequests === true) {
        client.subscribe(attestationRequestTopic(this.deviceId), { qos: 0 }, (err, granted) => {
          if (err !== null || (granted?.[0]?.qos ?? 0x80) >= 0x80) this.emit('warning', { message: 'attestation request subscription refused', error: err ?? undefined });
        });
      }
            this.emit('connected', { attempt: this.#attempts, auth: this.auth, serial: this.#serial, endpoint: this.#urls[this.#urlIndex % this.#urls.length]! });
      this.#firstConnect.resolve();
      this.#kickDrain();
    });
    client.on('error', (e) => {
      lastError = e.message;
      const reason = finalReasonOf(e);
      if (reason !== undefined) {
        const code = (e as { code?: unknown }).code;
        final ??= { reason, ...(typeof code === 'number' ? { code } : {}), detail: e.message };
      }
    });
    client.on('disconnect', (p) => {
      disconnectCode = p.reasonCode;
      const reason = finalDisconnectReason(p.reasonCode);
      if (reason !== undefined) final ??= { reason, ...(p.reasonCode === undefined ? {} : { code: p.reasonCode }), detail: 'DISCONNECT from the gateway' };
    });
    client.on('message', (topic, payload) => this.#onMessage(topic, payload));
    client.once('close', () => {
      wipe(creds);
      const was = this.#client === client && this.#connected;
      this.#onClose(client);
      if (this.#closing) return;
      if (was) this.emit('disconnected', { reasonCode: disconnectCode, error: lastError });
      if (final !== undefined) return this.#stop(final);
      if (this.#client === undefined) this.#scheduleReconnect();
    });
  }

  /** Forgets a closed client: its in-flight PUBLISHes are lost (their senders buffer them). */
  #onClose(client: MqttClient | undefined): void {
    if (client === undefined) return;
    if (this.#window?.client === client) {
      this.#window.fail();
      this.#window = undefined;
    }
    if (this.#client === client) {
      this.#client = undefined;
      this.#connected = false;
    }
    client.removeAllListeners('message');
    client.end(true);
  }

  #scheduleReconnect(): void {
    if (this.#stopped !== undefined || this.#closing) return;
    this.#failures++;
    // Fail over: the next attempt goes to the next endpoint (a renewal's reconnect stays put).
    if (!this.#immediate) this.#urlIndex = (this.#urlIndex + 1) % this.#urls.length;
    const delayMs = this.#immediate ? 0 : backoffDelay(this.#failures, this.#policy, this.#o.random ?? Math.random);
    this.#immediate = false;
    this.emit('reconnecting', { attempt: this.#failures, delayMs });
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => void this.#attempt(), delayMs);
  }

  /** After a renewal: a clean DISCONNECT, then at once a new connection with the new certificate. */
  #reconnectNow(): void {
    const c = this.#client;
    if (c === undefined || !this.#connected) return;
    this.#immediate = true;
    this.#failures = 0;
    c.end(false);
  }

  #stop(info: StopInfo): void {
    if (this.#stopped !== undefined) return;
    this.#stopped = info;
    clearTimeout(this.#reconnectTimer);
    clearTimeout(this.#renewTimer);
    this.#firstConnect.reject(new ConnectionStoppedError(info));
    this.emit('stopped', info);
  }

  // --- commands and renewal --------------------------------------------------------------------

  #onMessage(topic: string, payload: Buffer): void {
    // Issue 13: the server asks for an attestation; the payload carries nothing the device needs.
    if (this.#o.attestationRequests === true && topic === attestationRequestTopic(this.deviceId)) return void this.emit('attestation-request');
    const parsed = parseCommand(this.deviceId, topic, payload);
    if ('problem' in parsed) return void this.emit('warning', { message: parsed.problem });
    const command = parsed.command;
    // QoS 1 is at-least-once [MQTT-4.3.2]: a redelivered command runs once.
    if (this.#seen.has(command.id)) return;
    this.#seen.add(command.id);
    if (this.#seen.size > SEEN_COMMANDS) this.#seen.delete(this.#seen.values().next().value!);
    if (command.expiresAt !== null && Date.parse(command.expiresAt) < this.#now().getTime()) {
      return void this.emit('warning', { message: `command ${command.id} expired before it arrived; ignored` });
    }
    this.emit('command', command);
    const handler = this.#handler;
    if (handler !== undefined) runHandler(handler, command, (r) => this.sendCommandResult(command.id, r), (w) => this.emit('warning', w));
  }

  #scheduleRenewal(afterRenewal = false): void {
    clearTimeout(this.#renewTimer);
    if (this.auth !== 'mtls' || this.#o.autoRenew === false || this.#stopped !== undefined) return;
    // At least a minute apart: a certificate that is due at once (skewed clock, a very short
    // lifetime) must not turn into a renewal loop against the server.
    const wait = Math.max(afterRenewal ? MIN_RENEWAL_GAP_MS : 0, this.renewalDueAt().getTime() - this.#now().getTime());
    this.#renewTimer = setTimeout(() => void this.#autoRenew(), Math.min(wait, MAX_TIMER_MS));
    this.#renewTimer.unref();
  }

  async #autoRenew(): Promise<void> {
    try {
      if (!(await this.renewIfDue())) this.#scheduleRenewal();
    } catch (error) {
      // Retry well before expiry: a tenth of what is left, between a minute and an hour.
      const left = Date.parse(this.#record.notAfter) - this.#now().getTime();
      const delay = Math.min(3_600_000, Math.max(60_000, Math.floor(left / 10)));
      this.emit('renewal-failed', { error, retryAt: new Date(this.#now().getTime() + delay) });
      clearTimeout(this.#renewTimer);
      this.#renewTimer = setTimeout(() => void this.#autoRenew(), delay);
      this.#renewTimer.unref();
    }
  }
}

function refusal(code: number): FleetkeyError {
  // 0x87 Not authorized, 0x90 Topic name invalid, 0x99 Payload format invalid [MQTT 5.0 §3.4.2.1]
  const c = code === 0x87 ? 'FORBIDDEN' : 'VALIDATION_FAILED';
  return new FleetkeyError(c, { detail: `gateway refused the message: PUBACK 0x${code.toString(16)}` });
}
