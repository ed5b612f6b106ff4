import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BUNDLE_FILES, DeviceUpdater, EMPTY_FLOOR, loadBundle, openBundleKeystore, UpdateRefusedError, type DeviceTls, type FloorState, type FloorStore } from '@fleetkey/device';
import { isFleetkeyError } from '@fleetkey/protocol';
import type { Fleet, SimDevice } from './fleet.js';

export interface UpdatePlan {
  /** Share of devices whose install hook fails (0..1), chosen from a hash of the device id. */
  installFailRatio: number;
  /** How often each device checks the director (jittered ±50 %). */
  checkIntervalMs: number;
}

export interface UpdateSummary {
  checks: number;
  installed: number;
  failed: number;
  /** Refusals by catalogue code (UPDATE_*, fetch failures): a refused update installs nothing. */
  refused: Record<string, number>;
}

/** Checks of the whole fleet in flight at once: a 2-core machine serves the device plane too. */
const CHECKS_IN_FLIGHT = 16;

/**
 * The floor of a simulated device, in memory: the simulator exercises the server's side of
 * updates (director, repository, reports, rollouts), not the device's persistence, which the
 * SDK's own tests cover (sealed file, TPM NV counter).
 */
class MemoryFloor implements FloorStore {
  readonly kind = 'file' as const;
  #state: FloorState | null = null;
  read(): Promise<{ state: FloorState; existed: boolean }> {
    return Promise.resolve({ state: this.#state ?? EMPTY_FLOOR, existed: this.#state !== null });
  }
  write(state: FloorState): Promise<void> {
    this.#state = state;
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Whether this device's installs fail: the first 8 bytes of sha256(deviceId) as a fraction of
 * 2^64, below the ratio. Deterministic, so a run over the same bundles fails the same devices,
 * and spread evenly over any selection of names.
 */
export function failsInstall(deviceId: string, ratio: number): boolean {
  if (ratio <= 0) return false;
  if (ratio >= 1) return true;
  const h = createHash('sha256').update(deviceId).digest();
  return Number(h.readBigUInt64BE(0) >> 11n) / 2 ** 53 < ratio;
}

/** The device's mTLS identity for the device plane, from its provisioned bundle (as connect() reads it). */
async function deviceTls(dir: string): Promise<{ tls: DeviceTls; deviceUrl: string }> {
  const bundle = await loadBundle(dir);
  const record = bundle.provisioned;
  if (record === null) throw new Error('bundle not provisioned');
  const keystore = await openBundleKeystore(bundle);
  try {
    const key = (await keystore.getKey(record.operationalKeyLabel))?.tlsKey();
    if (key === undefined) throw new Error('operational key not usable by Node TLS');
    const cert = await readFile(join(bundle.dir, BUNDLE_FILES.operationalChain), 'utf8');
    return { tls: { ca: bundle.caBundlePem, cert, key: Buffer.from(key.export({ type: 'pkcs8', format: 'pem' }) as string) }, deviceUrl: record.gateway.deviceUrl };
  } finally {
    await keystore.close();
  }
}

/**
 * `fleetkey simulate --install-fail-ratio X`: every connected device runs the SDK's DeviceUpdater
 * (tuf-js over mTLS on both the image repository and the director, Uptane agreement, download,
 * sha256, anti-rollback floor) on a jittered interval, installs through a hook that fails for
 * the chosen share of devices, and reports each phase over MQTT on devices/{id}/update with its
 * own connection. A device whose install failed stops checking (as a device that needs a
 * technician would): its one `failed` report is what a rollout counts.
 */
export class SimUpdates {
  readonly #summary: UpdateSummary = { checks: 0, installed: 0, failed: 0, refused: {} };
  readonly #updaters = new Map<string, DeviceUpdater>();
  readonly #halted = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #inFlight = 0;
  #next = new Map<string, number>();
  #running: Promise<void>[] = [];

  constructor(
    private readonly fleet: Fleet,
    private readonly plan: UpdatePlan,
    private readonly stateRoot: (d: SimDevice) => string,
  ) {}

  start(): void {
    const now = Date.now();
    for (const d of this.fleet.devices) this.#next.set(d.bundle.deviceId, now + Math.random() * this.plan.checkIntervalMs);
    this.#timer = setInterval(() => this.#tick(), 100);
  }

  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await Promise.allSettled(this.#running);
    for (const u of this.#updaters.values()) u.close();
  }

  summary(): UpdateSummary {
    return { ...this.#summary, refused: { ...this.#summary.refused } };
  }

  /** Where the next tick starts looking: round robin, so devices late in the list are not starved by early ones due again. */
  #cursor = 0;

  #tick(): void {
    const now = Date.now();
    const all = this.fleet.devices;
    for (let k = 0; k < all.length; k++) {
      if (this.#inFlight >= CHECKS_IN_FLIGHT) return;
      const i = (this.#cursor + k) % all.length;
      const d = all[i] as SimDevice;
      const id = d.bundle.deviceId;
      if (!d.up || d.replaced || this.#halted.has(id)) continue;
      const due = this.#next.get(id) ?? now;
      if (due > now) continue;
      this.#next.set(id, Number.POSITIVE_INFINITY);
      this.#cursor = (i + 1) % all.length;
      this.#inFlight++;
      const p = this.#check(d).finally(() => {
        this.#inFlight--;
        this.#next.set(id, Date.now() + this.plan.checkIntervalMs * (0.5 + Math.random()));
        this.#running = this.#running.filter((x) => x !== p);
      });
      this.#running.push(p);
    }
  }

  async #check(d: SimDevice): Promise<void> {
    const id = d.bundle.deviceId;
    this.#summary.checks++;
    try {
      let u = this.#updaters.get(id);
      if (u === undefined) {
        const { tls, deviceUrl } = await deviceTls(d.bundle.dir);
        const fail = failsInstall(id, this.plan.installFailRatio);
        u = new DeviceUpdater({
          deviceId: id,
          deviceUrl,
          tls,
          stateDir: this.stateRoot(d),
          floor: new MemoryFloor(),
          install: async () => {
            if (fail) throw new Error('simulated install failure');
          },
          report: async (r) => d.conn?.sendUpdateReport(r),
        });
        this.#updaters.set(id, u);
      }
      const out = await u.check();
      if (out.status === 'installed') this.#summary.installed++;
      else if (out.status === 'failed') {
        this.#summary.failed++;
        this.#summary.refused[out.code] = (this.#summary.refused[out.code] ?? 0) + 1;
        if (out.code === 'UPDATE_INSTALL_FAILED') this.#halted.add(id);
      }
    } catch (e) {
      const code = e instanceof UpdateRefusedError || isFleetkeyError(e) ? e.code : (e as Error).name;
      this.#summary.refused[code] = (this.#summary.refused[code] ?? 0) + 1;
    }
  }
}
