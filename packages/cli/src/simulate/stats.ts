import { progressLine, statusLine } from '../progress.js';
/** Counters of one simulation run; plain numbers so a 10k-device run costs nothing per device here. */
export class SimStats {
  readonly startedAt = Date.now();
  devices = 0;
  alreadyProvisioned = 0;
  provisioned = 0;
  connected = 0;
  everConnected = 0;
  sent = 0;
  acknowledged = 0;
  /** In flight on a link that went down (a storm, a takeover): QoS 1 without an offline buffer loses them. */
  lost = 0;
  commandsAnswered = 0;
  /** Definitive no's from the server: provisioning refused, connection stopped, PUBLISH refused. */
  refusals = 0;
  errors = 0;
  /** Milliseconds from calling connect() to the first CONNACK, one entry per device. */
  readonly connectMs: number[] = [];
  /** The first few distinct problems, for the summary; never key material (codes and details only). */
  readonly problems = new Map<string, number>();

  problem(kind: 'refusal' | 'error', what: string): void {
    if (kind === 'refusal') this.refusals++;
    else this.errors++;
    const key = `${kind}: ${what}`;
    if (this.problems.has(key) || this.problems.size < 20) this.problems.set(key, (this.problems.get(key) ?? 0) + 1);
  }
}

/** Nearest-rank percentile (p in 0..100) of unsorted samples; null when there are none. */
export function percentile(samples: readonly number[], p: number): number | null {
  return rank([...samples].sort((a, b) => a - b), p);
}

function rank(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const r = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[r - 1] ?? null;
}

export interface Distribution {
  p50: number | null;
  p99: number | null;
  max: number | null;
}

/** p50, p99 and max of unsorted samples, rounded to 0.1 ms (one sort). */
export function distribution(samples: readonly number[]): Distribution {
  const sorted = [...samples].sort((a, b) => a - b);
  const r = (p: number): number | null => {
    const v = rank(sorted, p);
    return v === null ? null : Math.round(v * 10) / 10;
  };
  return { p50: r(50), p99: r(99), max: r(100) };
}

/** Adds one to `key` of a small tally. */
export function tally(t: Record<string, number>, key: string): void {
  t[key] = (t[key] ?? 0) + 1;
}

/**
 * Once a second: what an operator watching a load test needs at a glance. On a terminal one line
 * per phase, redrawn in place, with a bar and an ETA while provisioning and connecting; plain
 * lines otherwise.
 */
export function progressReporter(stats: SimStats, phase: () => string, extra: () => string | undefined): { tick: () => void; end: () => void } {
  let lastAt = Date.now();
  let lastAcked = 0;
  const line = statusLine();
  let phaseStart = { name: '', at: Date.now(), base: 0 };
  return {
    tick: () => {
      const now = Date.now();
      const rate = ((stats.acknowledged - lastAcked) * 1000) / Math.max(now - lastAt, 1);
      lastAt = now;
      lastAcked = stats.acknowledged;
      const p = phase();
      // manufacture() prints its own progress.
      if (p === 'manufacturing') return;
      if (p !== phaseStart.name) phaseStart = { name: p, at: now, base: p === 'provisioning' ? stats.provisioned : p === 'connecting' ? stats.connected : 0 };
      if (p === 'provisioning') {
        const total = stats.devices - stats.alreadyProvisioned;
        const { bar, plain } = progressLine('fleetkey: provisioning', stats.provisioned, total, 'devices', now - phaseStart.at, `refusals ${stats.refusals}, errors ${stats.errors}`);
        line.show(p, process.stderr.isTTY === true ? bar : plain);
        return;
      }
      if (p === 'connecting') {
        const { bar, plain } = progressLine('fleetkey: connecting', stats.connected, stats.devices, 'devices', now - phaseStart.at, `refusals ${stats.refusals}, errors ${stats.errors}`);
        line.show(p, process.stderr.isTTY === true ? bar : plain);
        return;
      }
      const more = extra();
      line.show(
        p,
        `fleetkey: ${p}: connected ${stats.connected}/${stats.devices}, ${rate.toFixed(0)} msgs/s, sent ${stats.sent}, acked ${stats.acknowledged}, refusals ${stats.refusals}, errors ${stats.errors}${more === undefined ? '' : `; ${more}`}`,
      );
    },
    end: () => line.end(),
  };
}
