// Start-to-answer time of `fleetkey` commands, shared by bench/cli and the CLI's start-time test:
// each sample is one process, spawned, run to its exit, wall time in ms. The baseline is a bare
// `node -e 0` of the same binary measured in the same loop, interleaved, so a busy machine slows
// both alike.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../packages/cli/bin/fleetkey.js', import.meta.url));

function once(args, env) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
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
 * Runs each command `runs` times, interleaved with the baseline; returns per label the samples,
 * median and min in ms. A command that exits non-zero fails the measurement (it did not answer).
 */
export async function measure(commands, { runs = 10, env = process.env } = {}) {
  const out = { baseline: [] };
  for (const c of commands) out[c.label] = [];
  for (let i = 0; i < runs; i++) {
    out.baseline.push((await once(['-e', '0'], env)).ms);
    for (const c of commands) {
      const r = await once([BIN, ...c.args], env);
      if (r.code !== 0) throw new Error(`fleetkey ${c.args.join(' ')} exited ${r.code}: ${r.err}`);
      out[c.label].push(r.ms);
    }
  }
  return Object.fromEntries(Object.entries(out).map(([k, xs]) => [k, { samples: xs, median: median(xs), min: Math.min(...xs) }]));
}
