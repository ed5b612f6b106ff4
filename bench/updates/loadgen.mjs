// The load side of bench/updates, in its own worker thread: device checks (two GETs each, the
// device's own keep-alive connection and certificate) and artifact downloads.
import { Agent, request } from 'node:https';
import { parentPort, workerData } from 'node:worker_threads';

const { base, ca, devices, job, sha } = workerData;
const agents = devices.map((d) => new Agent({ keepAlive: true, maxSockets: 4, ca, cert: d.cert, key: d.key }));

function get(url, agent, sink = false) {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => {
      let n = 0;
      res.on('data', (c) => (n += c.length));
      res.on('end', () => (res.statusCode === 200 ? resolve(n) : reject(new Error(`${url}: ${res.statusCode}`))));
      if (sink) res.resume();
    });
    req.on('error', reject);
    req.end();
  });
}

if (job.kind === 'check') {
  const lat = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: job.concurrency }, async () => {
      while (next < job.checks) {
        const i = next++;
        const agent = agents[i % agents.length];
        const s = performance.now();
        await get(`${base}/device/v1/updates/repo/metadata/timestamp.json`, agent);
        await get(`${base}/device/v1/updates/director/metadata/timestamp.json`, agent);
        lat.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  parentPort.postMessage({ perSec: job.checks / secs, p99: lat[Math.floor(lat.length * 0.99)] });
} else {
  const t0 = performance.now();
  let bytes = 0;
  for (let i = 0; i < job.downloads; i++) bytes += await get(`${base}/device/v1/updates/repo/targets/${sha}.bench.bin`, agents[0]);
  if (bytes !== job.bytes * job.downloads) throw new Error(`downloaded ${bytes} bytes`);
  parentPort.postMessage({ mbPerSec: bytes / 1024 / 1024 / ((performance.now() - t0) / 1000) });
}
for (const a of agents) a.destroy();
