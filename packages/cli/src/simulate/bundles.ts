import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BUNDLE_FILES, provision, ProvisioningGaveUpError, ProvisioningRefusedError } from '@fleetkey/device';
import { isFleetkeyError } from '@fleetkey/protocol';
import { UsageError } from '../client.js';
import { forEachLimit } from './pool.js';
import type { SimStats } from './stats.js';

export interface SimBundle {
  deviceId: string;
  dir: string;
}

/**
 * The first `count` bundles of `root`: in manifest order when `fleetkey manufacture` wrote a
 * manifest.json there, else every sub-directory holding a device.json, sorted by name.
 */
export function listBundles(root: string, count: number): SimBundle[] {
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
  if (all.length < count) throw new UsageError(`--bundles ${root} holds ${all.length} bundle(s); --devices asks for ${count}`);
  return all.slice(0, count);
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
      try {
        // The server's rate limit (429 + Retry-After) is honoured by the SDK's backoff; a load test
        // should still surface an overloaded server, not hide it behind ten minutes of retries.
        await provision(b.dir, { retry: { maxElapsedMs: 120_000 } });
        stats.provisioned++;
      } catch (e) {
        if (e instanceof ProvisioningRefusedError) stats.problem('refusal', `provision ${e.code}`);
        else if (e instanceof ProvisioningGaveUpError) stats.problem('error', `provision gave up: ${e.code}`);
        else stats.problem('error', `provision ${isFleetkeyError(e) ? e.code : (e as Error).name}`);
      }
    },
    stop,
  );
  return bundles.filter((b) => existsSync(join(b.dir, BUNDLE_FILES.provisioned)));
}
