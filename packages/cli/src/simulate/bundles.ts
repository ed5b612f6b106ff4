import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BUNDLE_FILES, provision, ProvisioningGaveUpError, ProvisioningRefusedError } from '@fleetkey/device';
import { isFleetkeyError } from '@fleetkey/protocol/base';
import { UsageError } from '../client.js';
import { forEachLimit } from './pool.js';
import type { SimStats } from './stats.js';

export interface SimBundle {
  deviceId: string;
  dir: string;
}

/**
 * Written into a bundle whose device `--churn` replaced (and so revoked): later runs over the same
 * directory skip it instead of counting a refusal for a device that is gone for good.
 */
export const REPLACED_MARKER = 'simulate-replaced.json';

/** A run's devices and the unprovisioned bundles after them, which `--churn` may use as replacements. */
export interface BundleSelection {
  devices: SimBundle[];
  spares: SimBundle[];
}

/**
 * Bundles `offset .. offset+count` of `root` (several processes can share one directory with
 * different offsets): in manifest order when `fleetkey manufacture` wrote a manifest.json there,
 * else every sub-directory holding a device.json, sorted by name. Bundles of devices replaced by an
 * earlier `--churn` are skipped.
 */
export function selectBundles(root: string, count: number, offset = 0): BundleSelection {
  const abs = resolve(root);
  const manifest = join(abs, 'manifest.json');
  let all: SimBundle[];
  if (existsSync(manifest)) {
    const parsed = JSON.parse(readFileSync(manifest, 'utf8')) as { devices?: { deviceId?: unknown; dir?: unknown }[] };
    all = (parsed.devices ?? []).flatMap((d) => (typeof d.deviceId === 'string' && typeof d.dir === 'string' ? [{ deviceId: d.deviceId, dir: join(abs, d.dir) }] : []));
  } else if (existsSync(abs)) {
    all = readdirSync(abs, { withFileTypes: true })
      .filter((e) => e.isDirectory() && existsSync(join(abs, e.name, BUNDLE_FILES.device)))
      .map((e) => e.name)
      .sort()
      .map((name) => ({ deviceId: name, dir: join(abs, name) }));
  } else {
    throw new UsageError(`--bundles ${root}: no such directory`);
  }
  all = all.filter((b) => !existsSync(join(b.dir, REPLACED_MARKER)));
  if (all.length < offset + count) throw new UsageError(`--bundles ${root} holds ${all.length} usable bundle(s); --offset ${offset} --devices ${count} needs ${offset + count}`);
  return {
    devices: all.slice(offset, offset + count),
    spares: all.slice(offset + count).filter((b) => !existsSync(join(b.dir, BUNDLE_FILES.provisioned))),
  };
}

/** Marks the bundle of a device that was replaced under its name and revoked. */
export async function markReplaced(b: SimBundle, record: { name: string; by: string }): Promise<void> {
  await writeFile(join(b.dir, REPLACED_MARKER), `${JSON.stringify({ ...record, at: new Date().toISOString() })}\n`, { mode: 0o600 });
}

/**
 * Provisions every bundle without a provisioned.json, `concurrency` at a time; counts, never
 * throws. Returns the bundles that are provisioned now (the ones to connect).
 */
export async function provisionMissing(bundles: readonly SimBundle[], concurrency: number, stats: SimStats, stop: () => boolean): Promise<SimBundle[]> {
  const todo = bundles.filter((b) => !existsSync(join(b.dir, BUNDLE_FILES.provisioned)));
  stats.alreadyProvisioned = bundles.length - todo.length;
  await forEachLimit(
    todo,
    concurrency,
    async (b) => {
      const problem = await provisionOne(b);
      if (problem === undefined) stats.provisioned++;
      else stats.problem(problem.kind, problem.what);
    },
    stop,
  );
  return bundles.filter((b) => existsSync(join(b.dir, BUNDLE_FILES.provisioned)));
}

/** The SDK's first-boot provisioning of one bundle; what went wrong, or undefined when it worked. */
export async function provisionOne(b: SimBundle): Promise<{ kind: 'refusal' | 'error'; what: string } | undefined> {
  try {
    // The server's rate limit (429 + Retry-After) is honoured by the SDK's backoff; a load test
    // should still surface an overloaded server, not hide it behind ten minutes of retries.
    await provision(b.dir, { retry: { maxElapsedMs: 120_000 } });
    return undefined;
  } catch (e) {
    if (e instanceof ProvisioningRefusedError) return { kind: 'refusal', what: `provision ${e.code}` };
    if (e instanceof ProvisioningGaveUpError) return { kind: 'error', what: `provision gave up: ${e.code}` };
    return { kind: 'error', what: `provision ${isFleetkeyError(e) ? e.code : (e as Error).name}` };
  }
}
