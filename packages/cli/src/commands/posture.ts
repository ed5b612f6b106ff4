import { POSTURE_SEVERITIES, type PostureReport, type PostureSeverity } from '@fleetkey/protocol';
import { Command, InvalidArgumentError, Option } from 'commander';
import { Client, type GlobalOptions } from '../client.js';
import { emit, table } from '../output.js';

/** Exit code when a finding at or above --fail-on has a non-zero count (0, 1, 2, 3 are main.ts's). */
export const POSTURE_FINDINGS_EXIT = 4;

function intIn(lo: number, hi: number) {
  return (v: string): string => {
    if (!/^\d+$/.test(v) || Number(v) < lo || Number(v) > hi) throw new InvalidArgumentError(`expected an integer in ${lo}..${hi}`);
    return v;
  };
}

const rank = (s: PostureSeverity): number => POSTURE_SEVERITIES.indexOf(s);

function human(r: PostureReport): string {
  const hits = r.findings.filter((f) => f.count > 0).sort((a, b) => rank(b.severity) - rank(a.severity) || a.id.localeCompare(b.id));
  const lines: string[] = [];
  if (hits.length === 0) lines.push(`no findings (${r.findings.length} checks ran)`);
  else {
    lines.push(table(['SEVERITY', 'COUNT', 'FINDING', 'IDS'], hits.map((f) => [f.severity, f.count, f.id, `${f.ids.slice(0, 3).join(' ')}${f.count > 3 ? ` … (+${f.count - Math.min(3, f.ids.length)})` : ''}`])));
    lines.push('', `${r.findings.length - hits.length} of ${r.findings.length} checks found nothing; --json lists every id (up to --ids per finding)`);
  }
  for (const g of r.notChecked) lines.push(`NOT CHECKED (${g.provider}): ${g.findings.join(', ')}: ${g.reason}`);
  return lines.join('\n');
}

export function postureCommand(): Command {
  return new Command('posture')
    .description('the fleet posture audit: findings by severity with their counts and ids')
    .option('--expiring-days <n>', 'report certificates expiring within n days', intIn(1, 3650), '30')
    .option('--ids <n>', 'at most n ids per finding (the count is always complete)', intIn(0, 1000), '100')
    .addOption(new Option('--fail-on <severity>', `exit ${POSTURE_FINDINGS_EXIT} when a finding at or above this severity is present`).choices([...POSTURE_SEVERITIES]))
    .action(async (o: { expiringDays: string; ids: string; failOn?: PostureSeverity }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const q = new URLSearchParams({ expiringDays: o.expiringDays, idLimit: o.ids });
      const r = await Client.from(g).request<PostureReport>('GET', `/v1/posture?${q}`);
      emit(g, r, () => human(r));
      if (o.failOn !== undefined && r.findings.some((f) => f.count > 0 && rank(f.severity) >= rank(o.failOn!))) process.exitCode = POSTURE_FINDINGS_EXIT;
    });
}
