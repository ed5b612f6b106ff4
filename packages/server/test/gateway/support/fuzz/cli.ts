/**
 * `npm run fuzz -- [--packets N] [--seed S] [--concurrency C] [--json]`: the long form of
 * fuzz-gateway.test.ts, same generator and campaign (bench/fuzz/run.mjs starts this file).
 * Exit code 1 on a crash, a fault, a lost acknowledgement or a gateway that stopped serving.
 */
import { runCampaign, summary } from './campaign.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const packets = Number(opt('packets') ?? 1_000_000);
const seed = Number(opt('seed') ?? Math.floor(Math.random() * 2 ** 31));
const concurrency = Number(opt('concurrency') ?? 12);
if (!Number.isInteger(packets) || packets < 1 || !Number.isInteger(seed) || !Number.isInteger(concurrency) || concurrency < 1) {
  console.error('usage: npm run fuzz -- [--packets N] [--seed S] [--concurrency C] [--json]');
  process.exit(2);
}
console.error(`[fuzz] seed ${seed}, ${packets} packets (replay: npm run fuzz -- --packets ${packets} --seed ${seed})`);
const r = await runCampaign({ packets, seed, concurrency, log: (l) => console.error(`[fuzz] ${l}`) });
console.log(args.includes('--json') ? JSON.stringify(r, null, 2) : summary(r));
const ok = r.crashes === 0 && r.faults.length === 0 && r.good.errors === 0 && r.good.acked === r.good.sent && r.servingAfter;
process.exit(ok ? 0 : 1);
