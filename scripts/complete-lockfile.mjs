#!/usr/bin/env node
// The npm registry reachable from the project's machines serves only the rollup native builds for
// linux-x64/arm64-gnu. npm then cannot record the other platforms' optional packages, and `npm ci`
// refuses the lockfile as out of sync. This adds those entries tagged with their os/cpu, so npm ci
// recognises them as optional packages for another platform and skips them without a download.
// Run after any `npm install` that rewrites package-lock.json.
import { readFileSync, writeFileSync } from 'node:fs';

const LOCK = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(LOCK, 'utf8'));
const CPU = { 'arm-eabi': 'arm', 'arm-gnueabihf': 'arm', 'arm-musleabihf': 'arm' };

function platformOf(name) {
  const m = /^@rollup\/rollup-(android|darwin|freebsd|linux|openbsd|openharmony|win32)-(.+)$/.exec(name);
  if (m === null) return null;
  const [, os, rest] = m;
  let cpu = CPU[rest] ?? rest.replace(/-(gnu|musl|msvc)$/, '');
  const libc = /-(gnu|musl)(eabihf)?$/.exec(rest)?.[1];
  if (cpu.startsWith('arm-')) cpu = 'arm';
  return { os: [os], cpu: [cpu], ...(os === 'linux' && libc !== undefined ? { libc: [libc === 'gnu' ? 'glibc' : 'musl'] } : {}) };
}

let added = 0;
for (const [path, entry] of Object.entries(lock.packages)) {
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const target = 'node_modules/' + dep;
    const nested = `${path}/node_modules/${dep}`;
    if (lock.packages[target] !== undefined || lock.packages[nested] !== undefined) continue;
    const platform = platformOf(dep);
    if (platform === null) continue;
    lock.packages[target] = { version, ...platform, dev: entry.dev === true, license: 'MIT', optional: true };
    added += 1;
  }
}
lock.packages = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
writeFileSync(LOCK, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`complete-lockfile: added ${added} platform entries`);
