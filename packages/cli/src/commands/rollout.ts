import { Command } from 'commander';
import type { RolloutTargetView, RolloutView } from '@fleetkey/protocol';
import { Client, type GlobalOptions } from '../client.js';
import { emit, fields, table } from '../output.js';

/** `--waves 1%,10%,50%,100%` → [1, 10, 50, 100]. */
export function parseWaves(text: string): number[] {
  const out = text.split(',').map((w) => {
    const v = w.trim().replace(/%$/, '');
    const n = Number(v);
    if (v === '' || !Number.isFinite(n)) throw new Error(`--waves: "${w}" is not a percentage`);
    return n;
  });
  return out;
}

const human = (r: RolloutView): string =>
  fields([
    ['id', r.id],
    ['status', r.status],
    ['release', r.releaseId],
    ['select', r.select],
    ['waves', r.waves.map((w, i) => `${w}% (${r.waveSizes[i]})`).join(', ')],
    ['wave', `${r.currentWave + 1} of ${r.waves.length}`],
    ['rate', `${r.maxPerMinute}/min`],
    ['abort', `failures > ${r.abortFailureRatio} once ${r.minExecuted} executed; timeout ${r.timeoutMs / 1000}s${r.healthRule === null ? '' : `; health ${r.healthRule}`}`],
    ['success', `next wave at ${r.successRatio} of the wave installed`],
    ['counts', Object.entries(r.counts).map(([k, v]) => `${k} ${v}`).join(', ')],
    ['reason', r.abortReason],
    ['created', `${r.createdAt} by ${r.createdBy}`],
  ]);

export function rolloutCommand(): Command {
  const cmd = new Command('rollout').description('staged rollouts of a release to names, in waves that stop themselves');
  cmd
    .command('create')
    .description('assign a release to the selected names wave by wave')
    .requiredOption('--release <id>', 'release id')
    .requiredOption('--select <selector>', "'name:line-03-*' or 'tag:site=plant-1'")
    .option('--waves <list>', 'cumulative percentages, e.g. 1%,10%,50%,100%', '100%')
    .option('--max-per-minute <n>', 'names assigned per minute at most', '60')
    .option('--abort-failure-ratio <r>', 'abort when failures ÷ executed exceeds this', '0.1')
    .option('--min-executed <n>', 'executed names before the abort rule applies', '20')
    .option('--timeout <duration>', 'a name not installed this long after assignment failed (timed out)', '30m')
    .option('--success-ratio <r>', "a wave's installed share that starts the next (default 1 − abort ratio)")
    .option('--health-rule <rule>', "e.g. 'diagnostics.motor.temp < 80' (judged on diagnostics after install)")
    .action(async (o: { release: string; select: string; waves: string; maxPerMinute: string; abortFailureRatio: string; minExecuted: string; timeout: string; successRatio?: string; healthRule?: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const body = {
        release: o.release,
        select: o.select,
        waves: parseWaves(o.waves),
        maxPerMinute: Number(o.maxPerMinute),
        abortFailureRatio: Number(o.abortFailureRatio),
        minExecuted: Number(o.minExecuted),
        timeout: o.timeout,
        ...(o.successRatio === undefined ? {} : { successRatio: Number(o.successRatio) }),
        ...(o.healthRule === undefined ? {} : { healthRule: o.healthRule }),
      };
      const r = await Client.from(g).request<RolloutView>('POST', '/v1/rollouts', body);
      emit(g, r, () => human(r));
    });
  cmd
    .command('list')
    .description('rollouts, newest first')
    .option('--limit <n>', 'at most n', '100')
    .action(async (o: { limit: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await Client.from(g).request<{ rollouts: RolloutView[] }>('GET', `/v1/rollouts?limit=${encodeURIComponent(o.limit)}`);
      emit(g, r, () =>
        table(
          ['ID', 'STATUS', 'RELEASE', 'SELECT', 'WAVE', 'INSTALLED', 'FAILED', 'TOTAL'],
          r.rollouts.map((x) => [x.id, x.status, x.releaseId, x.select, `${x.currentWave + 1}/${x.waves.length}`, x.counts.installed + x.counts.healthy, x.counts.failed + x.counts.timedOut + x.counts.unhealthy, x.counts.total]),
        ),
      );
    });
  cmd
    .command('show <id>')
    .description('plan, state and counts of a rollout (--targets: per name)')
    .option('--targets [status]', 'list the names (optionally of one status)')
    .action(async (id: string, o: { targets?: string | boolean }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const client = Client.from(g);
      const r = await client.request<RolloutView>('GET', `/v1/rollouts/${encodeURIComponent(id)}`);
      if (o.targets === undefined) {
        emit(g, r, () => human(r));
        return;
      }
      const q = typeof o.targets === 'string' ? `?status=${encodeURIComponent(o.targets)}` : '';
      const t = await client.request<{ targets: RolloutTargetView[] }>('GET', `/v1/rollouts/${encodeURIComponent(id)}/targets${q}`);
      emit(g, { ...r, targets: t.targets }, () => `${human(r)}\n\n${table(['NAME', 'WAVE', 'STATUS', 'DEVICE', 'CODE', 'ASSIGNED', 'OUTCOME'], t.targets.map((x) => [x.name, x.wave + 1, x.status, x.deviceId, x.code, x.assignedAt, x.outcomeAt]))}`);
    });
  for (const [action, what] of [
    ['pause', 'stop assigning new names (outcomes still count; the abort rule still watches)'],
    ['resume', 'assign again'],
    ['abort', 'stop for good: names not yet assigned are cancelled'],
    ['rollback', "stop, and give every name the rollout assigned its previous release back"],
  ] as const) {
    const sub = cmd.command(`${action} <id>`).description(what);
    if (action !== 'resume') sub.option('--reason <text>', 'why (audited)');
    sub.action(async (id: string, o: { reason?: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await Client.from(g).request<RolloutView>('POST', `/v1/rollouts/${encodeURIComponent(id)}/${action}`, o.reason === undefined ? null : { reason: o.reason });
      emit(g, r, () => `rollout ${r.id} ${r.status}`);
    });
  }
  return cmd;
}
