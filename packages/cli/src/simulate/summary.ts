import { fields } from '../output.js';
import type { ChurnSummary } from './churn.js';
import type { UpdateSummary } from './updates.js';
import { percentile, type SimStats } from './stats.js';
import type { StormSummary } from './storm.js';

export interface SimSummary {
  devices: number;
  provisioned: number;
  alreadyProvisioned: number;
  connected: number;
  connectedAtEnd: number;
  /** From the first connect() to every device of the run connected at once; null if never. */
  timeToAllConnectedMs: number | null;
  messagesSent: number;
  messagesAcknowledged: number;
  messagesLost: number;
  messagesPerSecond: number;
  commandsAnswered: number;
  connectMs: { p50: number | null; p99: number | null; max: number | null };
  refusals: number;
  errors: number;
  problems: Record<string, number>;
  phasesMs: { manufacture: number; provision: number; connect: number };
  sendWindowMs: number;
  elapsedMs: number;
  /** The simulator process's peak resident memory. */
  peakRssMiB: number;
  storm: StormSummary | null;
  churn: ChurnSummary | null;
  /** `--install-fail-ratio`: what the devices' update checks did. */
  updates: UpdateSummary | null;
  interrupted: boolean;
  /** Null when the run's temporary bundles were deleted at the end. */
  bundles: string | null;
  deviceIdsSample: string[];
}

export interface SummaryExtra {
  sendWindowMs: number;
  timeToAllConnectedMs: number | null;
  phasesMs: SimSummary['phasesMs'];
  storm: StormSummary | null;
  churn: ChurnSummary | null;
  updates: UpdateSummary | null;
  interrupted: boolean;
  bundles: string | null;
  deviceIdsSample: string[];
}

export function summarize(stats: SimStats, extra: SummaryExtra): SimSummary {
  return {
    devices: stats.devices,
    provisioned: stats.provisioned,
    alreadyProvisioned: stats.alreadyProvisioned,
    connected: stats.everConnected,
    connectedAtEnd: stats.connected,
    timeToAllConnectedMs: extra.timeToAllConnectedMs,
    messagesSent: stats.sent,
    messagesAcknowledged: stats.acknowledged,
    messagesLost: stats.lost,
    messagesPerSecond: Number((stats.acknowledged / Math.max(extra.sendWindowMs / 1000, 1e-3)).toFixed(1)),
    commandsAnswered: stats.commandsAnswered,
    connectMs: { p50: percentile(stats.connectMs, 50), p99: percentile(stats.connectMs, 99), max: percentile(stats.connectMs, 100) },
    refusals: stats.refusals,
    errors: stats.errors,
    problems: Object.fromEntries(stats.problems),
    phasesMs: extra.phasesMs,
    sendWindowMs: extra.sendWindowMs,
    elapsedMs: Date.now() - stats.startedAt,
    // maxRSS is in KiB (getrusage).
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    storm: extra.storm,
    churn: extra.churn,
    updates: extra.updates,
    interrupted: extra.interrupted,
    bundles: extra.bundles,
    deviceIdsSample: extra.deviceIdsSample,
  };
}

const ms = (v: number | null): string => (v === null ? '-' : `${v} ms`);
const pct = (v: number): string => `${(v * 100).toFixed(2)}%`;
const list = (t: Record<string, number>): string => Object.entries(t).map(([k, n]) => `${k} ×${n}`).join(', ') || 'none';

export function human(s: SimSummary): string {
  const problems = Object.entries(s.problems).map(([k, n]) => `\n  ${k} ×${n}`).join('');
  const rows: [string, unknown][] = [
    ['devices', s.devices],
    ['provisioned', `${s.provisioned} now, ${s.alreadyProvisioned} before`],
    ['connected', `${s.connected} (${s.connectedAtEnd} at the end), all within ${ms(s.timeToAllConnectedMs)}`],
    ['messages sent', s.messagesSent],
    ['acknowledged', `${s.messagesAcknowledged}${s.messagesLost > 0 ? ` (${s.messagesLost} lost in flight)` : ''}`],
    ['msgs/s', s.messagesPerSecond],
    ['connect p50/p99', s.connectMs.p50 === null ? '-' : `${s.connectMs.p50} / ${s.connectMs.p99} ms`],
    ['commands answered', s.commandsAnswered],
    ['refusals', s.refusals],
    ['errors', s.errors],
    ['peak RSS', `${s.peakRssMiB} MiB`],
  ];
  const st = s.storm;
  if (st !== null) {
    rows.push(
      ['storm: back', `${st.back}/${st.devices} (${pct(st.successRate)})${st.timedOut ? ', timed out' : ''}`],
      ['storm: attempts', `${st.attempts}, ${pct(st.attemptSuccessRate)} succeeded`],
      ['storm: 99% / 100% back', `${ms(st.timeTo99Ms)} / ${ms(st.timeTo100Ms)}`],
      ['storm: CONNACK p50/p99', `${ms(st.connackMs.p50)} / ${ms(st.connackMs.p99)}`],
      ['storm: simulator loop delay p99', ms(st.simulatorLoopDelayMs.p99)],
      ['storm: refusals', list(st.refusals)],
      ['storm: failed attempts', list(st.failures)],
    );
  }
  const ch = s.churn;
  if (ch !== null) {
    rows.push(
      ['churn: replaced', `${ch.done} of ${ch.attempted} (${ch.failed} failed, ${ch.skipped} skipped)`],
      ['churn: replace call p50/p99', `${ms(ch.replaceMs.p50)} / ${ms(ch.replaceMs.p99)}`],
      ['churn: old cut p50/p99', `${ms(ch.cutMs.p50)} / ${ms(ch.cutMs.p99)}`],
      ['churn: new 1st msg p50/p99', `${ms(ch.firstMessageMs.p50)} / ${ms(ch.firstMessageMs.p99)}`],
      ['churn: old reconnected', ch.oldReconnected],
      ['churn: failures', list(ch.failures)],
    );
  }
  const up = s.updates;
  if (up !== null) rows.push(['updates: checks', up.checks], ['updates: installed / failed', `${up.installed} / ${up.failed}`], ['updates: refusals', list(up.refused)]);
  rows.push(['bundles', s.bundles ?? '(temporary, deleted)']);
  return `${fields(rows)}${problems}${s.interrupted ? '\ninterrupted' : ''}`;
}
