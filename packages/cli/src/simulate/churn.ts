import type { StopInfo } from '@fleetkey/device';
import type { Device, ReplaceResult } from '@fleetkey/protocol';
import { ApiError, type Client } from '../client.js';
import { markReplaced, provisionOne, type SimBundle } from './bundles.js';
import type { Fleet, FleetObserver, SimDevice } from './fleet.js';
import { distribution, tally, type Distribution } from './stats.js';

/** Replacements in flight at once; past that a due replacement is skipped (and counted). */
const MAX_IN_FLIGHT = 4;
/** How long one replacement may take from the replace call to the new device's first acknowledged message. */
const REPLACEMENT_TIMEOUT_MS = 60_000;
/** Devices asked for their name before a replacement gives up finding a named one. */
const PICK_TRIES = 5;

export interface ChurnOptions {
  perMinute: number;
  client: Client;
  /** A bundle for the replacement device (a spare, or one manufactured now); undefined when none can be had. */
  nextSpare: () => Promise<SimBundle | undefined>;
}

export interface Replacement {
  name: string;
  oldDeviceId: string;
  newDeviceId: string;
  replaceMs: number;
  cutMs: number | null;
  firstMessageMs: number | null;
  oldStop: string | null;
}

export interface ChurnSummary {
  perMinute: number;
  attempted: number;
  done: number;
  failed: number;
  /** Due while MAX_IN_FLIGHT replacements were still running. */
  skipped: number;
  /** The replace call itself (one transaction: rebind, revoke the old device, audit, events). */
  replaceMs: Distribution;
  /** Replace call → the old device's connection closed by the gateway. */
  cutMs: Distribution;
  /** Replace call → the new device's first message acknowledged (stored under the name). */
  firstMessageMs: Distribution;
  /** Old devices that connected again after their cut: must stay 0. */
  oldReconnected: number;
  /** Why the old devices' SDKs stopped reconnecting. */
  oldStops: Record<string, number>;
  failures: Record<string, number>;
  /** The first 20 replacements. */
  replacements: Replacement[];
}

interface Watch {
  t0: number;
  cutAt: number | undefined;
  onCut: () => void;
  stop: string | undefined;
}

/**
 * `--churn`: at a steady rate, one simulated device that holds a name is replaced the way an
 * operator does it (`POST /v1/names/{name}/replace` with revokeOld, as `fleetkey name replace
 * --revoke-old`), and the simulator checks what the fleet sees: the old device's connection is
 * closed and its SDK stops for good, the new device provisions (keeping the name it was just
 * given), connects, and its first message is acknowledged under the name.
 */
export class Churn implements FleetObserver {
  readonly #fleet: Fleet;
  readonly #o: ChurnOptions;
  readonly #watches = new Map<SimDevice, Watch>();
  readonly #cut = new Set<SimDevice>();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #replaceMs: number[] = [];
  readonly #cutMs: number[] = [];
  readonly #firstMs: number[] = [];
  readonly #failures: Record<string, number> = {};
  readonly #oldStops: Record<string, number> = {};
  readonly #replacements: Replacement[] = [];
  readonly #unobserve: () => void;
  #timer: NodeJS.Timeout | undefined;
  #paused = false;
  #attempted = 0;
  #done = 0;
  #skipped = 0;
  #oldReconnected = 0;

  constructor(fleet: Fleet, o: ChurnOptions) {
    this.#fleet = fleet;
    this.#o = o;
    this.#unobserve = fleet.observe(this);
  }

  start(): void {
    this.#timer ??= setInterval(() => this.#due(), Math.max(50, Math.round(60_000 / this.#o.perMinute)));
  }

  /** While paused (a storm is being measured) due replacements are not started. */
  pause(paused: boolean): void {
    this.#paused = paused;
  }

  /** Stops scheduling and waits for the replacements in flight. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.allSettled([...this.#inFlight]);
    this.#unobserve();
  }

  progress(): string {
    return `churn ${this.#done}/${this.#attempted} replaced${this.#attempted - this.#done - this.#inFlight.size > 0 ? `, ${this.#attempted - this.#done - this.#inFlight.size} failed` : ''}`;
  }

  summary(): ChurnSummary {
    return {
      perMinute: this.#o.perMinute,
      attempted: this.#attempted,
      done: this.#done,
      failed: this.#attempted - this.#done,
      skipped: this.#skipped,
      replaceMs: distribution(this.#replaceMs),
      cutMs: distribution(this.#cutMs),
      firstMessageMs: distribution(this.#firstMs),
      oldReconnected: this.#oldReconnected,
      oldStops: this.#oldStops,
      failures: this.#failures,
      replacements: this.#replacements,
    };
  }

  #due(): void {
    if (this.#paused) return;
    if (this.#inFlight.size >= MAX_IN_FLIGHT) {
      this.#skipped++;
      return;
    }
    const p = this.#replaceOne().catch((e: unknown) => this.#fail(`unexpected ${(e as Error).name}`));
    this.#inFlight.add(p);
    void p.finally(() => this.#inFlight.delete(p));
  }

  #fail(reason: string): void {
    tally(this.#failures, reason);
  }

  async #replaceOne(): Promise<void> {
    this.#attempted++;
    const victim = await this.#pickNamed();
    if (victim === undefined) return this.#fail('no connected device holds a name');
    const { d, name } = victim;
    d.replaced = true;
    const spare = await this.#o.nextSpare().catch(() => undefined);
    if (spare === undefined) {
      d.replaced = false;
      return this.#fail('no spare bundle');
    }
    let onCut!: () => void;
    const cut = new Promise<void>((r) => (onCut = r));
    const watch: Watch = { t0: performance.now(), cutAt: undefined, onCut, stop: undefined };
    this.#watches.set(d, watch);
    const oldDeviceId = d.bundle.deviceId;
    try {
      await this.#o.client.request<ReplaceResult>('POST', `/v1/names/${encodeURIComponent(name)}/replace`, {
        deviceId: spare.deviceId,
        // Optimistic concurrency, as `fleetkey name replace` does: replace exactly the binding looked at.
        expectedDeviceId: oldDeviceId,
        revokeOld: true,
        reason: 'fleetkey simulate --churn',
      });
    } catch (e) {
      this.#watches.delete(d);
      d.replaced = false;
      return this.#fail(`replace ${e instanceof ApiError ? e.body.code : (e as Error).message}`);
    }
    const replaceMs = performance.now() - watch.t0;
    this.#replaceMs.push(replaceMs);
    await markReplaced(d.bundle, { name, by: spare.deviceId }).catch(() => undefined);

    // The new device: first boot (provisioning keeps the name it now holds), connect, one message.
    const firstMessage = this.#bringUp(spare, oldDeviceId, watch.t0);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), REPLACEMENT_TIMEOUT_MS)));
    const [first, cutDone] = await Promise.all([Promise.race([firstMessage, timeout]), Promise.race([cut.then(() => true), timeout])]);
    clearTimeout(timer);
    const firstMessageMs = typeof first === 'number' ? first : null;
    const cutMs = watch.cutAt === undefined ? null : watch.cutAt - watch.t0;
    if (cutMs !== null) this.#cutMs.push(cutMs);
    if (firstMessageMs !== null) this.#firstMs.push(firstMessageMs);
    if (this.#replacements.length < 20) {
      const r = (v: number | null): number | null => (v === null ? null : Math.round(v * 10) / 10);
      this.#replacements.push({ name, oldDeviceId, newDeviceId: spare.deviceId, replaceMs: r(replaceMs) ?? 0, cutMs: r(cutMs), firstMessageMs: r(firstMessageMs), oldStop: watch.stop ?? null });
    }
    if (cutDone !== true) return this.#fail('old device not cut in time');
    if (typeof first !== 'number') return this.#fail(first === 'timeout' ? 'new device sent nothing in time' : first);
    this.#done++;
  }

  /** Milliseconds from `t0` to the new device's first acknowledged message, or why there is none. */
  async #bringUp(spare: SimBundle, oldDeviceId: string, t0: number): Promise<number | string> {
    const problem = await provisionOne(spare);
    if (problem !== undefined) return `new device: ${problem.what}`;
    const nd = await this.#fleet.add(spare);
    if (nd.conn === undefined) return 'new device: connect failed';
    try {
      await nd.conn.ready();
    } catch (e) {
      return `new device: ${(e as Error).message}`;
    }
    const ok = await this.#fleet.sendNow(nd, { replacementOf: oldDeviceId });
    return ok ? performance.now() - t0 : 'new device: first message not acknowledged';
  }

  /** A random connected device and the name it holds now (asked of the server, the authority). */
  async #pickNamed(): Promise<{ d: SimDevice; name: string } | undefined> {
    const all = this.#fleet.devices;
    for (let i = 0; i < PICK_TRIES; i++) {
      const d = all[Math.floor(Math.random() * all.length)];
      if (d === undefined || !d.up || d.replaced) continue;
      try {
        const dev = await this.#o.client.request<Device>('GET', `/v1/devices/${d.bundle.deviceId}`);
        if (dev.name !== null && !d.replaced) return { d, name: dev.name };
      } catch {
        // another device may do
      }
    }
    return undefined;
  }

  // FleetObserver: the old device's side.

  connected(d: SimDevice): void {
    if (this.#cut.has(d)) this.#oldReconnected++;
  }

  disconnected(d: SimDevice): void {
    this.#onCut(d);
  }

  stopped(d: SimDevice, info: StopInfo): void {
    const w = this.#watches.get(d);
    if (w === undefined || info.reason === 'closed') return;
    w.stop = info.reason;
    tally(this.#oldStops, info.reason);
    this.#onCut(d);
  }

  #onCut(d: SimDevice): void {
    const w = this.#watches.get(d);
    if (w === undefined || w.cutAt !== undefined) return;
    w.cutAt = performance.now();
    this.#cut.add(d);
    w.onCut();
  }
}
