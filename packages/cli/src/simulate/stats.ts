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
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] ?? null;
}

/** One stderr line per second: what an operator watching a load test needs at a glance. */
export function progressReporter(stats: SimStats, phase: () => string): { tick: () => void } {
  let lastAt = Date.now();
  let lastAcked = 0;
  return {
    tick: () => {
      const now = Date.now();
      const rate = ((stats.acknowledged - lastAcked) * 1000) / Math.max(now - lastAt, 1);
      lastAt = now;
      lastAcked = stats.acknowledged;
      const p = phase();
      // manufacture() prints its own progress.
      if (p === 'manufacturing') return;
      if (p === 'provisioning') {
        process.stderr.write(`fleetkey: provisioning: ${stats.provisioned}/${stats.devices - stats.alreadyProvisioned}, refusals ${stats.refusals}, errors ${stats.errors}\n`);
        return;
      }
      process.stderr.write(
        `fleetkey: ${p}: connected ${stats.connected}/${stats.devices}, ${rate.toFixed(0)} msgs/s, sent ${stats.sent}, acked ${stats.acknowledged}, refusals ${stats.refusals}, errors ${stats.errors}\n`,
      );
    },
  };
}

export interface SimSummary {
  devices: number;
  provisioned: number;
  alreadyProvisioned: number;
  connected: number;
  connectedAtEnd: number;
  messagesSent: number;
  messagesAcknowledged: number;
  messagesPerSecond: number;
  commandsAnswered: number;
  connectMs: { p50: number | null; p99: number | null; max: number | null };
  refusals: number;
  errors: number;
  problems: Record<string, number>;
  sendWindowMs: number;
  elapsedMs: number;
  interrupted: boolean;
  /** Null when the run's temporary bundles were deleted at the end. */
  bundles: string | null;
  deviceIdsSample: string[];
}

export function summarize(stats: SimStats, extra: { sendWindowMs: number; interrupted: boolean; bundles: string | null; deviceIdsSample: string[] }): SimSummary {
  return {
    devices: stats.devices,
    provisioned: stats.provisioned,
    alreadyProvisioned: stats.alreadyProvisioned,
    connected: stats.everConnected,
    connectedAtEnd: stats.connected,
    messagesSent: stats.sent,
    messagesAcknowledged: stats.acknowledged,
    messagesPerSecond: Number((stats.acknowledged / Math.max(extra.sendWindowMs / 1000, 1e-3)).toFixed(1)),
    commandsAnswered: stats.commandsAnswered,
    connectMs: { p50: percentile(stats.connectMs, 50), p99: percentile(stats.connectMs, 99), max: percentile(stats.connectMs, 100) },
    refusals: stats.refusals,
    errors: stats.errors,
    problems: Object.fromEntries(stats.problems),
    sendWindowMs: extra.sendWindowMs,
    elapsedMs: Date.now() - stats.startedAt,
    interrupted: extra.interrupted,
    bundles: extra.bundles,
    deviceIdsSample: extra.deviceIdsSample,
  };
}
