import { join } from 'node:path';
import { Client, type GlobalOptions } from '../client.js';
import { manufacture } from '../commands/manufacture.js';
import { provisionMissing, selectBundles, type SimBundle } from './bundles.js';
import { Churn } from './churn.js';
import { Fleet } from './fleet.js';
import { progressReporter, SimStats } from './stats.js';
import { Storm, type StormSummary } from './storm.js';
import { summarize, type SimSummary } from './summary.js';
import { SimUpdates, type UpdatePlan } from './updates.js';

export interface SimulationPlan {
  count: number;
  /** Bundles of the directory to skip first: several processes share one directory this way. */
  offset: number;
  rate: number;
  durationMs: number;
  concurrency: number;
  root: string;
  /** Manufacture `count` devices into `root` first. */
  manufacture: boolean;
  /** x509 group enrollment for manufactured devices and churn spares. */
  enrollment: string | undefined;
  /** Whether the summary names `root` (false: temporary bundles, deleted after the run). */
  keepBundles: boolean;
  mqttUrl: string | undefined;
  /** Replacements per minute; 0: no churn. */
  churnPerMinute: number;
  storm: { afterMs: number; timeoutMs: number } | undefined;
  /** Run the update flow on every device (`--install-fail-ratio`). */
  updates: UpdatePlan | undefined;
}

/** SIGINT as a flag every wait of the run wakes up for. */
export class Interrupt {
  requested = false;
  readonly #wakers = new Set<() => void>();

  request(): void {
    this.requested = true;
    for (const w of this.#wakers) w();
    this.#wakers.clear();
  }

  sleep(ms: number): Promise<void> {
    if (this.requested || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.#wakers.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.#wakers.add(done);
    });
  }
}

/** How long a storm waits for the fleet to be fully connected before it starts anyway. */
const STORM_SETTLE_MS = 30_000;

/**
 * One simulation: manufacture (optionally), provision what is not provisioned, connect, send for
 * the duration with churn and a storm inside that window, drain, summarise, close. Live progress
 * goes to stderr once a second from one interval.
 */
export async function runSimulation(plan: SimulationPlan, g: GlobalOptions, intr: Interrupt): Promise<SimSummary> {
  const stats = new SimStats();
  const stop = (): boolean => intr.requested;
  let phase = 'provisioning';
  let storm: Storm | undefined;
  let churn: Churn | undefined;
  let updates: SimUpdates | undefined;
  const progress = progressReporter(stats, () => phase, () => [storm?.progress(), churn?.progress()].filter((x) => x !== undefined).join('; ') || undefined);
  const ticker = setInterval(() => progress.tick(), 1000);
  let fleet: Fleet | undefined;
  try {
    const t0 = Date.now();
    if (plan.manufacture) {
      phase = 'manufacturing';
      await manufacture(manufactureOptions(plan, plan.root, plan.count), g);
    }
    const tManufacture = Date.now();
    const selection = selectBundles(plan.root, plan.count, plan.offset);
    stats.devices = selection.devices.length;
    phase = 'provisioning';
    const ready = await provisionMissing(selection.devices, plan.concurrency, stats, stop);
    const tProvision = Date.now();

    phase = 'connecting';
    fleet = new Fleet(ready, stats, { rate: plan.rate, connectConcurrency: plan.concurrency, ...(plan.mqttUrl === undefined ? {} : { mqttUrl: plan.mqttUrl }) });
    const connectStart = performance.now();
    let allConnectedMs: number | null = null;
    const unobserve = fleet.observe({
      connected: () => {
        if (allConnectedMs === null && stats.connected >= ready.length) allConnectedMs = Math.round(performance.now() - connectStart);
      },
    });
    await fleet.connectAll(stop);
    const tConnect = Date.now();

    phase = 'sending';
    const sendStart = Date.now();
    fleet.startSending();
    if (plan.updates !== undefined) {
      updates = new SimUpdates(fleet, plan.updates, (d) => join(d.bundle.dir, 'sim-updates'));
      updates.start();
    }
    if (plan.churnPerMinute > 0) {
      churn = new Churn(fleet, { perMinute: plan.churnPerMinute, client: Client.from(g), nextSpare: spareSource(plan, selection.spares, g) });
      churn.start();
    }
    let stormSummary: StormSummary | null = null;
    if (plan.storm !== undefined && !intr.requested) {
      const settleEnd = Date.now() + STORM_SETTLE_MS;
      while (stats.connected < ready.length && Date.now() < settleEnd && !intr.requested) await intr.sleep(100);
      await intr.sleep(plan.storm.afterMs);
      if (!intr.requested) {
        churn?.pause(true);
        phase = 'storm';
        storm = new Storm(fleet);
        const running = storm.run(plan.storm.timeoutMs, stop);
        // A line as the links are cut and one when the storm is over, however short it was.
        progress.tick();
        stormSummary = await running;
        progress.tick();
        storm = undefined;
        phase = 'sending';
        churn?.pause(false);
      }
    }
    await intr.sleep(plan.durationMs - (Date.now() - sendStart));
    await churn?.stop();
    await updates?.stop();
    fleet.stopSending();
    phase = 'draining';
    await fleet.drain(5000);
    unobserve();
    const summary = summarize(stats, {
      sendWindowMs: Date.now() - sendStart,
      timeToAllConnectedMs: allConnectedMs,
      phasesMs: { manufacture: tManufacture - t0, provision: tProvision - tManufacture, connect: tConnect - tProvision },
      storm: stormSummary,
      churn: churn?.summary() ?? null,
      updates: updates?.summary() ?? null,
      interrupted: intr.requested,
      bundles: plan.keepBundles ? plan.root : null,
      deviceIdsSample: selection.devices.slice(0, 10).map((b) => b.deviceId),
    });
    phase = 'closing';
    await fleet.closeAll();
    fleet = undefined;
    return summary;
  } finally {
    clearInterval(ticker);
    await updates?.stop();
    progress.end();
    await fleet?.closeAll();
  }
}

function manufactureOptions(plan: SimulationPlan, out: string, count: number): Parameters<typeof manufacture>[0] {
  return { count: String(count), out, enrollment: plan.enrollment ?? '', attestation: 'x509', keystore: 'file', curve: 'P-256', concurrency: String(Math.min(plan.concurrency, 64)) };
}

/**
 * Replacement devices for churn: unprovisioned bundles after the run's own in the directory, then,
 * when an enrollment is known, devices manufactured one at a time through the same path as
 * `--manufacture` (into `<root>/spares/`).
 */
function spareSource(plan: SimulationPlan, pool: SimBundle[], g: GlobalOptions): () => Promise<SimBundle | undefined> {
  const left = [...pool];
  const tag = Date.now().toString(36);
  let made = 0;
  return async () => {
    const next = left.shift();
    if (next !== undefined || plan.enrollment === undefined) return next;
    const r = await manufacture(manufactureOptions(plan, join(plan.root, 'spares', `${tag}-${++made}`), 1), g);
    const e = r.devices[0];
    return e === undefined ? undefined : { deviceId: e.deviceId, dir: join(r.out, e.dir) };
  };
}
