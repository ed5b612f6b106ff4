import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { StopInfo } from '@fleetkey/device';
import type { Fleet, FleetObserver, SimDevice } from './fleet.js';
import { distribution, tally, type Distribution } from './stats.js';

export interface StormSummary {
  /** Devices connected when every link was cut: the ones expected back. */
  devices: number;
  linksCut: number;
  /** Of those, how many connected again before the storm ended. */
  back: number;
  /** back ÷ devices. */
  successRate: number;
  /** Connection attempts during the storm (every device, every retry). */
  attempts: number;
  failedAttempts: number;
  /** Attempts that got a CONNACK ÷ attempts. */
  attemptSuccessRate: number;
  /** From the cut until 99% (and 100%) of the devices were back; null when never reached. */
  timeTo99Ms: number | null;
  timeTo100Ms: number | null;
  /** Per successful attempt during the storm: socket opened → CONNACK. */
  connackMs: Distribution;
  /** Refused CONNACKs and connections stopped for good, by reason. */
  refusals: Record<string, number>;
  /** Attempts that ended without any CONNACK (timeouts, resets), by reason. */
  failures: Record<string, number>;
  /**
   * The simulator's own event-loop delay during the storm: when its p99 is near the CONNACK
   * latencies, the simulator (one process playing every device) was the bottleneck, not the server.
   */
  simulatorLoopDelayMs: Distribution;
  /** The storm ended at its time limit with devices still away. */
  timedOut: boolean;
  durationMs: number;
}

/**
 * One reconnect storm: every link of the fleet cut at once (as a network outage would), then
 * each device left to come back with the SDK's own full-jitter backoff. Counts from the devices'
 * own events; nothing is polled per device.
 */
export class Storm implements FleetObserver {
  readonly #fleet: Fleet;
  readonly #pending = new Set<SimDevice>();
  readonly #backMs: number[] = [];
  readonly #connackMs: number[] = [];
  readonly #refusals: Record<string, number> = {};
  readonly #failures: Record<string, number> = {};
  #devices = 0;
  #attempts = 0;
  #failed = 0;
  #t0 = 0;
  #running = false;

  constructor(fleet: Fleet) {
    this.#fleet = fleet;
  }

  /** Cuts every link and waits until every device is back, stopped for good, or `timeoutMs` passed. */
  async run(timeoutMs: number, stop: () => boolean): Promise<StormSummary> {
    for (const d of this.#fleet.devices) if (d.up && !d.replaced) this.#pending.add(d);
    this.#devices = this.#pending.size;
    const unobserve = this.#fleet.observe(this);
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    this.#running = true;
    this.#t0 = performance.now();
    const linksCut = this.#fleet.dropAll();
    try {
      while (this.#pending.size > 0 && !stop() && performance.now() - this.#t0 < timeoutMs) await new Promise((r) => setTimeout(r, 25));
    } finally {
      this.#running = false;
      this.#endedAt = performance.now();
      loop.disable();
      unobserve();
    }
    const back = this.#backMs.length;
    const need99 = Math.ceil(this.#devices * 0.99);
    return {
      devices: this.#devices,
      linksCut,
      back,
      successRate: ratio(back, this.#devices),
      attempts: this.#attempts,
      failedAttempts: this.#failed,
      attemptSuccessRate: ratio(this.#attempts - this.#failed, this.#attempts),
      timeTo99Ms: back >= need99 && need99 > 0 ? Math.round(this.#backMs[need99 - 1] ?? 0) : null,
      timeTo100Ms: back === this.#devices && back > 0 ? Math.round(this.#backMs[back - 1] ?? 0) : null,
      connackMs: distribution(this.#connackMs),
      refusals: this.#refusals,
      failures: this.#failures,
      simulatorLoopDelayMs: loopDelay(loop),
      timedOut: this.#pending.size > 0 && !stop(),
      durationMs: Math.round(performance.now() - this.#t0),
    };
  }

  #endedAt: number | undefined;

  /** The live progress line's storm part (also once it is over). */
  progress(): string {
    const s = ((this.#endedAt ?? performance.now()) - this.#t0) / 1000;
    const pct = (100 * this.#backMs.length) / Math.max(this.#devices, 1);
    return `storm ${s.toFixed(1)} s${this.#running ? '' : ' (over)'}: back ${this.#backMs.length}/${this.#devices} (${pct.toFixed(1)}%), attempts ${this.#attempts}, failed ${this.#failed}, waiting in the simulator ${this.#fleet.attemptsWaiting}`;
  }

  connected(d: SimDevice, connackMs: number | undefined): void {
    this.#attempts++;
    if (connackMs !== undefined) this.#connackMs.push(connackMs);
    // Back times arrive in order, so the array stays sorted for the 99% rank.
    if (this.#pending.delete(d)) this.#backMs.push(performance.now() - this.#t0);
  }

  attemptFailed(_d: SimDevice, reason: string): void {
    this.#attempts++;
    this.#failed++;
    tally(reason.startsWith('CONNACK') ? this.#refusals : this.#failures, reason);
  }

  stopped(d: SimDevice, info: StopInfo): void {
    if (info.reason === 'closed') return;
    // A stop during an attempt ends that attempt: 'reconnecting' never comes for it.
    if (!d.attemptOk) {
      this.#attempts++;
      this.#failed++;
    }
    tally(this.#refusals, `stopped: ${info.reason}${info.code === undefined ? '' : ` (0x${info.code.toString(16)})`}`);
    this.#pending.delete(d);
  }
}

/** The histogram's p50/p99/max in milliseconds (it records nanoseconds). */
function loopDelay(h: ReturnType<typeof monitorEventLoopDelay>): Distribution {
  if (h.count === 0) return { p50: null, p99: null, max: null };
  const ms = (ns: number): number => Math.round(ns / 1e5) / 10;
  return { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) };
}

function ratio(a: number, b: number): number {
  return b === 0 ? 0 : Math.round((a / b) * 10_000) / 10_000;
}
