// Start-to-answer time of `fleetkey` commands, shared by bench/cli and the CLI's start-time test:
// each sample is one process, spawned, run to its exit, wall time in ms. The baseline is a bare
// `node -e 0` of the same binary measured in the same loop, interleaved, so a busy machine slows
// both alike.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../packages/cli/bin/fleetkey.js', import.meta.url));
const CPU_REPORT = fileURLToPath(new URL('./cpu-report.mjs', import.meta.url));

function once(args, env, cpuFile) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, ['--import', CPU_REPORT, ...args], { env: { ...env, FLEETKEY_CPU_REPORT: cpuFile }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stdout.resume();
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      resolve({ ms, code, err });
    });
  });
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

/**
 * Runs each command `runs` times, interleaved with the baseline; returns per label the wall-time
 * samples, their median and min, and the median CPU time (user + system) of the process, in ms. A
 * command that exits non-zero fails the measurement (it did not answer).
 */
export async function measure(commands, { runs = 10, env = process.env } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'fleetkey-cli-measure-'));
  const labels = ['baseline', ...commands.map((c) => c.label)];
  const wall = Object.fromEntries(labels.map((l) => [l, []]));
  try {
    for (let i = 0; i < runs; i++) {
      wall.baseline.push((await once(['-e', '0'], env, join(dir, 'baseline'))).ms);
      for (const [j, c] of commands.entries()) {
        const r = await once([BIN, ...c.args], env, join(dir, `c${j}`));
        if (r.code !== 0) throw new Error(`fleetkey ${c.args.join(' ')} exited ${r.code}: ${r.err}`);
        wall[c.label].push(r.ms);
      }
    }
    const cpuOf = (file) => readFileSync(join(dir, file), 'utf8').trim().split('\n').map(Number);
    const cpu = { baseline: cpuOf('baseline'), ...Object.fromEntries(commands.map((c, j) => [c.label, cpuOf(`c${j}`)])) };
    return Object.fromEntries(labels.map((k) => [k, { samples: wall[k], median: median(wall[k]), min: Math.min(...wall[k]), cpuMedian: median(cpu[k]) }]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
