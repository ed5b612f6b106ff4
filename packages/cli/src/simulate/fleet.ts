import { connect, ConnectionStoppedError, type DeviceConnection } from '@fleetkey/device';
import { isFleetkeyError } from '@fleetkey/protocol';
import type { SimBundle } from './bundles.js';
import { forEachLimit } from './pool.js';
import type { SimStats } from './stats.js';

/** How often the one ticker walks the fleet: fine enough for rates up to ~10/s per device. */
const TICK_MS = 100;
/** Sends awaiting PUBACK per device before it skips a beat: a slow gateway is shown, not buried. */
const MAX_INFLIGHT = 8;
/** How long one device may hold a connect slot before the next device goes. */
const CONNECT_SLOT_MS = 10_000;

/** Per device: a few numbers and the connection; no timers of its own. */
interface SimDevice {
  readonly bundle: SimBundle;
  conn: DeviceConnection | undefined;
  up: boolean;
  credit: number;
  inflight: number;
  seq: number;
}

export interface FleetOptions {
  rate: number;
  connectConcurrency: number;
}

/**
 * The simulated devices of one process. Each device is a real `connect()` (mTLS or SAS, full-jitter
 * reconnect) with offline buffering off, so memory per device is the MQTT client and a small
 * record; one interval drives every device's sends from a per-device credit.
 */
export class Fleet {
  readonly #devices: SimDevice[];
  readonly #stats: SimStats;
  readonly #o: FleetOptions;
  #ticker: NodeJS.Timeout | undefined;
  #lastTick = 0;

  constructor(bundles: readonly SimBundle[], stats: SimStats, o: FleetOptions) {
    // A random initial credit spreads the first sends over a whole period instead of one burst.
    this.#devices = bundles.map((bundle) => ({ bundle, conn: undefined, up: false, credit: Math.random(), inflight: 0, seq: 0 }));
    this.#stats = stats;
    this.#o = o;
  }

  /** Connects every device, `connectConcurrency` handshakes at a time; devices not up yet keep retrying. */
  async connectAll(stop: () => boolean): Promise<void> {
    await forEachLimit(this.#devices, this.#o.connectConcurrency, (d) => this.#connectOne(d), stop);
  }

  async #connectOne(d: SimDevice): Promise<void> {
    const s = this.#stats;
    const t0 = performance.now();
    let conn: DeviceConnection;
    try {
      conn = await connect(d.bundle.dir, { waitForConnection: false, offline: false });
    } catch (e) {
      s.problem('error', `connect ${isFleetkeyError(e) ? e.code : (e as Error).name}`);
      return;
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
    });
    conn.on('disconnected', () => {
      if (d.up) s.connected--;
      d.up = false;
    });
    conn.on('stopped', (info) => {
      if (d.up) s.connected--;
      d.up = false;
      if (info.reason !== 'closed') s.problem('refusal', `stopped: ${info.reason}`);
    });
    conn.on('warning', (w) => s.problem('error', `warning: ${w.message}`));
    conn.onCommand(() => {
      s.commandsAnswered++;
      return { ok: true };
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([conn.ready().catch(() => undefined), new Promise((r) => (timer = setTimeout(r, CONNECT_SLOT_MS)))]);
    clearTimeout(timer);
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
        this.#send(d, d.conn);
      }
    }
  }

  #send(d: SimDevice, conn: DeviceConnection): void {
    const s = this.#stats;
    const seq = ++d.seq;
    // Alternate the two device-to-cloud channels the server stores separately.
    const p = seq % 2 === 1 ? conn.sendTelemetry({ seq, t: Date.now(), temperature: 20 + Math.random() * 5 }) : conn.sendDiagnostics({ seq, uptimeS: Math.round(performance.now() / 1000) });
    d.inflight++;
    s.sent++;
    p.then(
      (r) => {
        if (r.delivered) s.acknowledged++;
      },
      (e: unknown) => {
        if (e instanceof ConnectionStoppedError) return; // counted once by the 'stopped' event
        if (isFleetkeyError(e) && e.code === 'UNAVAILABLE') s.problem('error', 'send lost: not connected');
        else if (isFleetkeyError(e)) s.problem('refusal', `publish ${e.code}`);
        else s.problem('error', `publish ${(e as Error).name}`);
      },
    ).finally(() => d.inflight--);
  }

  /** Waits (bounded) for sends still awaiting their PUBACK, so the summary counts them. */
  async drain(timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end && this.#devices.some((d) => d.inflight > 0)) await new Promise((r) => setTimeout(r, 20));
  }

  /** Closes every connection (clean DISCONNECT), 64 at a time. */
  async closeAll(): Promise<void> {
    this.stopSending();
    await forEachLimit(this.#devices, 64, async (d) => {
      const c = d.conn;
      d.conn = undefined;
      await c?.close().catch(() => undefined);
    });
  }
}
