#!/usr/bin/env node
// bench/updates (device part): the verification cost of one device update check with the SDK's
// TUF client (tuf-js 4.1, the version @fleetkey/device pins) against the raw signature
// verifications the same check needs, measured in the same run. One check = the TUF 1.0 §5
// workflow on the image repository AND the Uptane director (root, timestamp, snapshot, targets
// each: 8 documents, 8 ed25519 signatures, plus hashing, parsing and the version/expiry/
// threshold rules). The fetcher serves the documents from memory, so network and TLS are out of
// the figure (bench/updates/run.mjs measures those). Two cases: a cold check (no trusted metadata
// but the root) and a warm check (trusted metadata on disk, a new timestamp/snapshot/targets).
// Usage: node bench/updates/verify.mjs [--quick] [--json]
import { verify as nodeVerify } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buildRoot, canonicalBytes, generateTufKeyPair, metadataDocument, publicKeyOfTuf, signMetadata, softwareTufSigner, tufExpires } from '@fleetkey/crypto';
import { scratch } from '../lib/scratch.mjs';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const asJson = args.includes('--json');
const CHECKS = quick ? 30 : 400;
const RUNS = quick ? 1 : 3;
const s = scratch('fk-bench-verify-');

// The device package's own tuf-js (the root may hoist another major for the server's tests).
const { Updater, BaseFetcher } = createRequire(new URL('../../packages/device/package.json', import.meta.url))('tuf-js');

const signers = Object.fromEntries(['root', 'targets', 'snapshot', 'timestamp'].map((r) => [r, softwareTufSigner(generateTufKeyPair('ed25519').privateKey)]));
const year = Date.now() + 365 * 86_400_000;
const spec = '1.0.31';

/** One repository at version `v` of its timestamp/snapshot/targets: the files a check fetches. */
async function repository(v, withTargets) {
  const root = await signMetadata(buildRoot({ version: 1, expiresAt: year, root: { keys: [signers.root.key], threshold: 1 }, targets: { keys: [signers.targets.key], threshold: 1 }, snapshot: { keys: [signers.snapshot.key], threshold: 1 }, timestamp: { keys: [signers.timestamp.key], threshold: 1 } }), [signers.root]);
  const targets = await signMetadata({ _type: 'targets', spec_version: spec, version: v, expires: tufExpires(year), targets: withTargets }, [signers.targets]);
  const snapshot = await signMetadata({ _type: 'snapshot', spec_version: spec, version: v, expires: tufExpires(year), meta: { 'targets.json': { version: v } } }, [signers.snapshot]);
  const timestamp = await signMetadata({ _type: 'timestamp', spec_version: spec, version: v, expires: tufExpires(year), meta: { 'snapshot.json': { version: v } } }, [signers.timestamp]);
  return { root, files: { '1.root.json': metadataDocument(root), 'timestamp.json': metadataDocument(timestamp), [`${v}.snapshot.json`]: metadataDocument(snapshot), [`${v}.targets.json`]: metadataDocument(targets) }, docs: [root, timestamp, snapshot, targets] };
}

class MemoryFetcher extends BaseFetcher {
  constructor(files) {
    super();
    this.files = files;
  }
  async fetch(url) {
    const name = url.slice(url.lastIndexOf('/') + 1);
    const body = this.files[name];
    if (body === undefined) {
      const { DownloadHTTPError } = createRequire(new URL('../../packages/device/package.json', import.meta.url))('tuf-js/dist/error.js');
      throw new DownloadHTTPError('not found', 404);
    }
    return Readable.from([Buffer.from(body)]);
  }
}

const target = { 'robot-x-2.0.0.bin': { length: 52_428_800, hashes: { sha256: 'ab'.repeat(32) }, custom: { version: '2.0.0' } } };
const director = (deviceId, counter) => ({ 'robot-x-2.0.0.bin': { length: 52_428_800, hashes: { sha256: 'ab'.repeat(32) }, custom: { deviceId, name: 'line-03', releaseId: 'r', version: '2.0.0', counter } } });

async function check(dir, image, dir2, dir_) {
  for (const [d, repo] of [[dir, image], [dir2, dir_]]) {
    const u = new Updater({ metadataDir: d, metadataBaseUrl: 'https://x/metadata/', fetcher: new MemoryFetcher(repo.files) });
    await u.refresh();
    await u.getTargetInfo('robot-x-2.0.0.bin');
  }
}

async function tufCold(n, run) {
  const image = await repository(1, target);
  const dirRepo = await repository(1, director('d', 1));
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    // Each run its own directories: a cold check starts from the root alone.
    const a = join(s.dir, `cold-${run}-${i}-i`);
    const b = join(s.dir, `cold-${run}-${i}-d`);
    mkdirSync(a, { recursive: true });
    mkdirSync(b, { recursive: true });
    writeFileSync(join(a, 'root.json'), image.files['1.root.json']);
    writeFileSync(join(b, 'root.json'), dirRepo.files['1.root.json']);
    await check(a, image, b, dirRepo);
  }
  return Number(process.hrtime.bigint() - t0) / 1e6 / n;
}

async function tufWarm(n, run) {
  // Each run its own directories: a client that kept the last run's version N refuses version 1.
  const a = join(s.dir, `warm-${run}-i`);
  const b = join(s.dir, `warm-${run}-d`);
  mkdirSync(a, { recursive: true });
  mkdirSync(b, { recursive: true });
  const first = await repository(1, target);
  writeFileSync(join(a, 'root.json'), first.files['1.root.json']);
  writeFileSync(join(b, 'root.json'), first.files['1.root.json']);
  // Pre-signed versions so signing is not in the timed loop.
  const versions = [];
  for (let v = 1; v <= n + 1; v++) versions.push([await repository(v, target), await repository(v, director('d', v))]);
  await check(a, versions[0][0], b, versions[0][1]);
  const t0 = process.hrtime.bigint();
  for (let i = 1; i <= n; i++) await check(a, versions[i][0], b, versions[i][1]);
  return Number(process.hrtime.bigint() - t0) / 1e6 / n;
}

/** Baseline: the same 8 signatures verified directly over the canonical signed bytes (KeyObjects cached). */
async function raw(n) {
  const image = await repository(1, target);
  const dirRepo = await repository(1, director('d', 1));
  const docs = [...image.docs, ...dirRepo.docs];
  const keys = new Map(Object.values(signers).map((sg) => [sg.keyId, publicKeyOfTuf(sg.key)]));
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    for (const d of docs) {
      const sig = d.signatures[0];
      if (!nodeVerify(null, canonicalBytes(d.signed), keys.get(sig.keyid), Buffer.from(sig.sig, 'hex'))) throw new Error('bad signature');
    }
  }
  return Number(process.hrtime.bigint() - t0) / 1e6 / n;
}

const med = (xs) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
const results = { cold: [], warm: [], raw: [] };
for (let r = 0; r < RUNS; r++) {
  results.raw.push(await raw(CHECKS * 4));
  results.cold.push(await tufCold(CHECKS, r));
  results.warm.push(await tufWarm(CHECKS, r));
}
const out = {
  checks: CHECKS,
  runs: RUNS,
  coldMsPerCheck: med(results.cold),
  warmMsPerCheck: med(results.warm),
  rawSignaturesMsPerCheck: med(results.raw),
};
out.coldOverRaw = out.coldMsPerCheck / out.rawSignaturesMsPerCheck;
out.warmOverRaw = out.warmMsPerCheck / out.rawSignaturesMsPerCheck;
if (asJson) console.log(JSON.stringify(out));
else {
  console.log(`device update check verification (image + director, 8 ed25519 documents), ${CHECKS} checks × ${RUNS} runs${quick ? ' (quick)' : ''}`);
  console.log(`  tuf-js, cold (root only trusted):   ${out.coldMsPerCheck.toFixed(2)} ms/check  (${out.coldOverRaw.toFixed(1)}× raw)`);
  console.log(`  tuf-js, warm (new ts/snap/targets): ${out.warmMsPerCheck.toFixed(2)} ms/check  (${out.warmOverRaw.toFixed(1)}× raw)`);
  console.log(`  raw: 8 signature verifications:     ${out.rawSignaturesMsPerCheck.toFixed(3)} ms/check`);
}
