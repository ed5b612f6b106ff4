import { connect, ConnectionStoppedError, type DeviceConnection, type StopInfo } from '@fleetkey/device';
import { isFleetkeyError } from '@fleetkey/protocol/base';
import type { SimBundle } from './bundles.js';
import { AttemptGate, type AttemptState } from './attempts.js';
import { forEachLimit } from './pool.js';
import { tapTlsSockets } from './socket-tap.js';
import type { SimStats } from './stats.js';

/** How often the one ticker walks the fleet: fine enough for rates up to ~10/s per device. */
const TICK_MS = 100;
/** Sends awaiting PUBACK per device before it skips a beat: a slow gateway is shown, not buried. */
const MAX_INFLIGHT = 8;
/** How long one device may hold a connect slot before the next device goes. */
const CONNECT_SLOT_MS = 10_000;
/** A device's CONNACK deadline per attempt (the SDK's default), counted from when the attempt reached the network. */
const CONNECT_TIMEOUT_MS = 10_000;
/** The SDK's own deadline runs from before the gate: long enough never to fire while an attempt waits there. */
const SDK_CONNECT_TIMEOUT_MS = 15 * 60_000;
/** Connection attempts on the network at once (TCP connect to CONNACK): a herd, but one this process can answer. */
const ATTEMPTS_IN_FLIGHT = 512;

/** Per device: a few numbers and the connection; no timers of its own. */
export interface SimDevice extends AttemptState {
  readonly bundle: SimBundle;
  conn: DeviceConnection | undefined;
  up: boolean;
  credit: number;
  inflight: number;
  seq: number;
  /** Being replaced under its name (churn): its cut is the expected outcome, not a refusal. */
  replaced: boolean;
}

/** What storm and churn measurements listen to; called synchronously from the SDK's events. */
export interface FleetObserver {
  /** `connackMs`: from the attempt's socket being opened to its CONNACK. */
  connected?(d: SimDevice, connackMs: number | undefined): void;
  disconnected?(d: SimDevice): void;
  /** An attempt ended without a CONNACK: `reason` is e.g. "CONNACK 0x89", "ECONNRESET", "timeout". */
  attemptFailed?(d: SimDevice, reason: string): void;
  stopped?(d: SimDevice, info: StopInfo): void;
}

export interface FleetOptions {
  rate: number;
  connectConcurrency: number;
  /** Instead of the gateway URL each bundle was provisioned with (another broker, a balancer). */
  mqttUrl?: string;
}

/**
 * The simulated devices of one process. Each device is a real `connect()` (mTLS or SAS, full-jitter
 * reconnect) with offline buffering off, so memory per device is the MQTT client and a small
 * record; one interval drives every device's sends from a per-device credit.
 */
export class Fleet {
  readonly #devices: SimDevice[] = [];
  readonly #byId = new Map<string, SimDevice>();
  readonly #observers = new Set<FleetObserver>();
  readonly #stats: SimStats;
  readonly #o: FleetOptions;
  readonly #untap: () => void;
  readonly #gate = new AttemptGate<SimDevice>(ATTEMPTS_IN_FLIGHT, CONNECT_TIMEOUT_MS);
  #ticker: NodeJS.Timeout | undefined;
  #lastTick = 0;

  constructor(bundles: readonly SimBundle[], stats: SimStats, o: FleetOptions) {
    for (const b of bundles) this.#track(b);
    this.#stats = stats;
    this.#o = o;
    this.#untap = tapTlsSockets({
      prepare: (id, opts) => {
        const d = this.#byId.get(id);
        return d === undefined ? undefined : this.#gate.prepare(d, opts);
      },
      onSocket: (id, socket) => {
        const d = this.#byId.get(id);
        if (d !== undefined) this.#gate.opened(d, socket);
      },
    });
  }

  get devices(): readonly SimDevice[] {
    return this.#devices;
  }

  /** Connection attempts held back by the gate (see AttemptGate). */
  get attemptsWaiting(): number {
    return this.#gate.waiting;
  }

  observe(o: FleetObserver): () => void {
    this.#observers.add(o);
    return () => void this.#observers.delete(o);
  }

  #track(bundle: SimBundle): SimDevice {
    // A random initial credit spreads the first sends over a whole period instead of one burst.
    const d: SimDevice = { bundle, conn: undefined, up: false, credit: Math.random(), inflight: 0, seq: 0, socket: undefined, attemptAt: 0, attemptOk: false, refusedCode: undefined, timedOut: false, stallAtAdmission: 0, replaced: false, tls: undefined };
    this.#devices.push(d);
    this.#byId.set(bundle.deviceId, d);
    return d;
  }

  /** Connects every device, `connectConcurrency` handshakes at a time; devices not up yet keep retrying. */
  async connectAll(stop: () => boolean): Promise<void> {
    await forEachLimit(this.#devices, this.#o.connectConcurrency, (d) => this.#connectOne(d), stop);
  }

  /** Adds one more device (a replacement) and starts its connection; resolves once connect() has. */
  async add(bundle: SimBundle): Promise<SimDevice> {
    const d = this.#track(bundle);
    await this.#start(d);
    return d;
  }

  async #connectOne(d: SimDevice): Promise<void> {
    const conn = await this.#start(d);
    if (conn === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([conn.ready().catch(() => undefined), new Promise((r) => (timer = setTimeout(r, CONNECT_SLOT_MS)))]);
    clearTimeout(timer);
  }

  async #start(d: SimDevice): Promise<DeviceConnection | undefined> {
    const s = this.#stats;
    const t0 = performance.now();
    let conn: DeviceConnection;
    try {
      conn = await connect(d.bundle.dir, {
        waitForConnection: false,
        offline: false,
        connectTimeoutMs: SDK_CONNECT_TIMEOUT_MS,
        ...(this.#o.mqttUrl === undefined ? {} : { mqttUrl: this.#o.mqttUrl }),
      });
    } catch (e) {
      s.problem('error', `connect ${isFleetkeyError(e) ? e.code : (e as Error).name}`);
      return undefined;
    }
    d.conn = conn;
    let first = true;
    conn.on('connected', () => {
      if (first) {
        first = false;
        s.everConnected++;
        s.connectMs.push(Math.round(performance.now() - t0));
      }
      if (!d.up) s.connected++;
      d.up = true;
      this.#gate.connected(d);
      const ms = d.socket === undefined ? undefined : performance.now() - d.attemptAt;
      for (const o of this.#observers) o.connected?.(d, ms);
    });
    conn.on('disconnected', () => {
      if (d.up) s.connected--;
      d.up = false;
      for (const o of this.#observers) o.disconnected?.(d);
    });
    conn.on('reconnecting', () => {
      // After a link that was up this is a drop, not a failed attempt.
      if (d.attemptOk || d.socket === undefined) return;
      const reason = failedAttemptReason(d);
      for (const o of this.#observers) o.attemptFailed?.(d, reason);
    });
    conn.on('stopped', (info) => {
      if (d.up) s.connected--;
      d.up = false;
      if (info.reason !== 'closed' && !d.replaced) s.problem('refusal', `stopped: ${info.reason}`);
      for (const o of this.#observers) o.stopped?.(d, info);
    });
    conn.on('warning', (w) => s.problem('error', `warning: ${w.message}`));
    conn.onCommand(() => {
      s.commandsAnswered++;
      return { ok: true };
    });
    return conn;
  }

  /**
   * A network outage: destroys every device's socket at once, with no DISCONNECT, so each device
   * sees its link die and reconnects with its own backoff. Returns how many links were cut.
   */
  dropAll(): number {
    let cut = 0;
    for (const d of this.#devices) {
      const sock = d.socket;
      if (sock === undefined || sock.destroyed || d.replaced) continue;
      sock.destroy();
      cut++;
    }
    return cut;
  }

  /** Starts the one ticker (no-op at rate 0). */
  startSending(): void {
    if (this.#o.rate <= 0 || this.#ticker !== undefined) return;
    this.#lastTick = performance.now();
    this.#ticker = setInterval(() => this.#tick(), TICK_MS);
  }

  stopSending(): void {
    clearInterval(this.#ticker);
    this.#ticker = undefined;
  }

  #tick(): void {
    const now = performance.now();
    const add = (this.#o.rate * (now - this.#lastTick)) / 1000;
    this.#lastTick = now;
    for (const d of this.#devices) {
      if (!d.up || d.conn === undefined) continue;
      d.credit = Math.min(d.credit + add, MAX_INFLIGHT);
      while (d.credit >= 1 && d.inflight < MAX_INFLIGHT) {
        d.credit -= 1;
        void this.#send(d, d.conn);
      }
    }
  }

  /** One diagnostics message now, outside the ticker; true once the gateway acknowledged it. */
  sendNow(d: SimDevice, body: Record<string, unknown>): Promise<boolean> {
    return d.conn === undefined ? Promise.resolve(false) : this.#send(d, d.conn, body);
  }

  #send(d: SimDevice, conn: DeviceConnection, extra?: Record<string, unknown>): Promise<boolean> {
    const s = this.#stats;
    const seq = ++d.seq;
    // Alternate the two device-to-cloud channels the server stores separately.
    const p =
      extra === undefined && seq % 2 === 1
        ? conn.sendTelemetry({ seq, t: Date.now(), temperature: 20 + Math.random() * 5 })
        : conn.sendDiagnostics({ seq, uptimeS: Math.round(performance.now() / 1000), ...extra });
    d.inflight++;
    s.sent++;
    return p
      .then(
        (r) => {
          if (r.delivered) s.acknowledged++;
          return r.delivered;
        },
        (e: unknown) => {
          if (e instanceof ConnectionStoppedError) return false; // counted once by the 'stopped' event
          // In flight on a link that went down: lost, as QoS 1 without an offline buffer is.
          if (isFleetkeyError(e) && e.code === 'UNAVAILABLE') s.lost++;
          else if (isFleetkeyError(e)) s.problem('refusal', `publish ${e.code}`);
          else s.problem('error', `publish ${(e as Error).name}`);
          return false;
        },
      )
      .finally(() => d.inflight--);
  }

  /** Waits (bounded) for sends still awaiting their PUBACK, so the summary counts them. */
  async drain(timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end && this.#devices.some((d) => d.inflight > 0)) await new Promise((r) => setTimeout(r, 20));
  }

  /** Closes every connection (clean DISCONNECT), 64 at a time, and removes the TLS tap. */
  async closeAll(): Promise<void> {
    this.stopSending();
    await forEachLimit(this.#devices, 64, async (d) => {
      const c = d.conn;
      d.conn = undefined;
      await c?.close().catch(() => undefined);
    });
    this.#untap();
    this.#gate.close();
  }
}

function failedAttemptReason(d: SimDevice): string {
  if (d.refusedCode !== undefined) return `CONNACK 0x${d.refusedCode.toString(16).padStart(2, '0')}`;
  const err = d.socket?.errored as (Error & { code?: unknown }) | null | undefined;
  if (err !== null && err !== undefined) return typeof err.code === 'string' ? err.code : err.name;
  if (d.timedOut) return 'no CONNACK in time';
  return 'closed before CONNACK';
}
