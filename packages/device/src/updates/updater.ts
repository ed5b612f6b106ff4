import { access, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compareSemver, parseSemver, type UpdateReport } from '@fleetkey/protocol';
import { Updater, type TargetFile } from 'tuf-js';
import { ensureSecureDir } from '../internal/secure-dir.js';
import { downloadTarget } from './download.js';
import type { FloorState, FloorStore } from './floor.js';
import { MtlsFetcher, type DeviceTls } from './mtls-fetcher.js';
import { classifyTufError, refuse, UpdateRefusedError } from './refusal.js';

/** What the device was told to install, once both repositories agree. */
export interface AssignedUpdate {
  readonly targetName: string;
  readonly releaseId: string;
  readonly version: string;
  readonly minVersion: string | null;
  readonly counter: number;
  readonly length: number;
  readonly sha256: string;
}

/** Runs the installation of a verified file; throws to report `failed` (UPDATE_INSTALL_FAILED). */
export type InstallHook = (file: string, update: AssignedUpdate) => Promise<void>;

export type UpdateOutcome =
  | { readonly status: 'none' }
  | { readonly status: 'current'; readonly version: string }
  | { readonly status: 'installed'; readonly update: AssignedUpdate }
  | { readonly status: 'failed'; readonly code: string; readonly detail: string; readonly update: AssignedUpdate | null };

export interface DeviceUpdaterOptions {
  /** The authenticated device id (from its certificate): the director must name this device. */
  readonly deviceId: string;
  /** The device plane, e.g. `https://fleet.example:8443` (the repositories are under /device/v1/updates). */
  readonly deviceUrl: string;
  readonly tls: DeviceTls;
  /** 0700 directory for trusted metadata (image/, director/) and downloads. */
  readonly stateDir: string;
  /**
   * The initial trusted roots (TUF 1.0 §5.2: shipped with the device). When absent, version 1 is
   * fetched once over the device's mTLS channel (the server proves itself against the bundle's
   * CA file) and pinned; every later root must then be signed by a threshold of the previous.
   */
  readonly roots?: { readonly image?: Buffer; readonly director?: Buffer };
  readonly floor: FloorStore;
  readonly install: InstallHook;
  /** Progress and outcome (`devices/{id}/update`); failures to deliver it never fail the update. */
  readonly report?: (r: UpdateReport) => Promise<unknown>;
  readonly timeoutMs?: number;
}

const REPO = '/device/v1/updates/repo';
const DIRECTOR = '/device/v1/updates/director';

/**
 * The device side of issue 12: TUF 1.0 client workflow (§5) on both the image repository and
 * the Uptane director with tuf-js, the Uptane checks between them, download with resume, the
 * anti-rollback floor, the install hook, and reports. One `check()` at a time.
 *
 * Order (each step refuses with a stable code and installs nothing):
 * 1. refresh the director and the image repository (rollback, freeze, mix-and-match, keys);
 * 2. the director's target must name THIS device, carry a counter equal to its metadata version
 *    and not below the counter of the last install (Uptane "director counter");
 * 3. the image repository must list the same target with the same length and sha256 (Uptane
 *    "director and image repository agree");
 * 4. the version must not be below the floor (anti-rollback, even when signed);
 * 5. download (≤ signed length, resume), sha256; 6. install hook; 7. raise the floor.
 */
export class DeviceUpdater {
  readonly #o: DeviceUpdaterOptions;
  readonly #fetcher: MtlsFetcher;
  #running = false;

  constructor(o: DeviceUpdaterOptions) {
    this.#o = o;
    this.#fetcher = new MtlsFetcher(o.tls, o.timeoutMs);
  }

  /** True once tuf-js persisted trusted metadata: from then on a missing floor is an attack. */
  static async hasTrustedMetadata(stateDir: string): Promise<boolean> {
    for (const repo of ['image', 'director']) {
      try {
        await access(join(stateDir, repo, 'timestamp.json'));
        return true;
      } catch {
        // not this one
      }
    }
    return false;
  }

  async check(): Promise<UpdateOutcome> {
    if (this.#running) throw refuse('UPDATE_FETCH_FAILED', 'an update check is already running');
    this.#running = true;
    let assigned: AssignedUpdate | null = null;
    try {
      const floor = await this.#o.floor.read();
      const directorDir = await this.#prepare('director', `${this.#o.deviceUrl}${DIRECTOR}`, this.#o.roots?.director);
      const imageDir = await this.#prepare('image', `${this.#o.deviceUrl}${REPO}`, this.#o.roots?.image);
      const director = this.#tuf(directorDir, `${this.#o.deviceUrl}${DIRECTOR}/metadata/`);
      const image = this.#tuf(imageDir, `${this.#o.deviceUrl}${REPO}/metadata/`);
      // Director first: once it is verified the failure of anything after it is reported against
      // the release it assigned.
      await refresh(director);
      const wanted = await this.#directorTarget(director, directorDir, floor.state);
      if (wanted === null) return { status: 'none' };
      assigned = wanted;
      await refresh(image);
      await this.#agree(image, wanted);
      if (floor.state.installedVersion !== null && floor.state.installedReleaseId === assigned.releaseId) return { status: 'current', version: assigned.version };
      // Anti-rollback floor: refused even though both repositories signed it.
      if (floor.state.floor !== null && compareSemver(assigned.version, floor.state.floor) < 0) {
        throw refuse('UPDATE_BELOW_FLOOR', `version ${assigned.version} is below the floor ${floor.state.floor}`);
      }
      const a = assigned;
      await this.#report({ releaseId: a.releaseId, version: a.version, phase: 'downloading', progress: 0 });
      const downloads = join(this.#o.stateDir, 'downloads');
      await ensureSecureDir(downloads);
      let lastReported = 0;
      const file = await downloadTarget(
        // Content-addressed (consistent snapshots, TUF 1.0 §5.7.3): `<sha256>.<name>`.
        { url: `${this.#o.deviceUrl}${REPO}/targets/${a.sha256}.${encodeURIComponent(a.targetName)}`, length: a.length, sha256: a.sha256 },
        {
          agent: this.#fetcher.agent,
          path: join(downloads, `${a.sha256}.bin`),
          ...(this.#o.timeoutMs === undefined ? {} : { timeoutMs: this.#o.timeoutMs }),
          onProgress: (p) => {
            if (p - lastReported < 0.25 || p >= 1) return;
            lastReported = p;
            void this.#report({ releaseId: a.releaseId, version: a.version, phase: 'downloading', progress: Math.round(p * 100) / 100 });
          },
        },
      );
      await this.#report({ releaseId: a.releaseId, version: a.version, phase: 'verifying' });
      await this.#report({ releaseId: a.releaseId, version: a.version, phase: 'installing' });
      try {
        await this.#o.install(file, a);
      } catch (e) {
        throw refuse('UPDATE_INSTALL_FAILED', `install hook: ${e instanceof Error ? e.message : String(e)}`.slice(0, 300), e);
      } finally {
        await rm(file, { force: true });
      }
      const next: FloorState = {
        floor: maxVersion(floor.state.floor, a.minVersion),
        installedVersion: a.version,
        installedReleaseId: a.releaseId,
        counter: Math.max(floor.state.counter, a.counter),
      };
      await this.#o.floor.write(next);
      await this.#report({ releaseId: a.releaseId, version: a.version, phase: 'installed' });
      return { status: 'installed', update: a };
    } catch (e) {
      const r = e instanceof UpdateRefusedError ? e : classifyTufError(e);
      // Before the director is verified nothing says which release this was: `unknown` / 0.0.0.
      await this.#report({ releaseId: assigned?.releaseId ?? 'unknown', version: assigned?.version ?? '0.0.0', phase: 'failed', code: r.code });
      return { status: 'failed', code: r.code, detail: r.detail ?? r.message, update: assigned };
    } finally {
      this.#running = false;
    }
  }

  close(): void {
    this.#fetcher.close();
  }

  async #report(r: UpdateReport): Promise<void> {
    try {
      await this.#o.report?.(r);
    } catch {
      // Reports ride the MQTT connection's offline buffer; the update itself does not depend on them.
    }
  }

  /** The metadata dir of one repository with its trusted root in place (TUF 1.0 §5.2). */
  async #prepare(repo: 'image' | 'director', base: string, pinned: Buffer | undefined): Promise<string> {
    await ensureSecureDir(this.#o.stateDir);
    const dir = join(this.#o.stateDir, repo);
    await ensureSecureDir(dir);
    const root = join(dir, 'root.json');
    try {
      await access(root);
      return dir;
    } catch {
      // first run
    }
    const bytes = pinned ?? (await this.#fetcher.downloadBytes(`${base}/metadata/1.root.json`, 512 * 1024).catch((e: unknown) => {
      throw classifyTufError(e);
    }));
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(root, bytes, { mode: 0o600 });
    return dir;
  }

  #tuf(dir: string, metadataBaseUrl: string): Updater {
    return new Updater({
      metadataDir: dir,
      metadataBaseUrl,
      fetcher: this.#fetcher,
      // The repositories are small; tight caps make endless-data metadata cheap to refuse (§5.2).
      config: { rootMaxLength: 512 * 1024, timestampMaxLength: 16 * 1024, snapshotMaxLength: 1024 * 1024, targetsMaxLength: 4 * 1024 * 1024, prefixTargetsWithHash: true },
    });
  }

  /** Uptane: what the director assigns this device (its own checks, before the image repository). */
  async #directorTarget(director: Updater, directorDir: string, state: FloorState): Promise<AssignedUpdate | null> {
    // tuf-js persisted the director targets it just verified; only the names are taken from the
    // file, every value below comes from tuf-js's trusted set through getTargetInfo.
    const doc = JSON.parse(await readFile(join(directorDir, 'targets.json'), 'utf8')) as { signed?: { version?: unknown; targets?: Record<string, unknown> } };
    const names = Object.keys(doc.signed?.targets ?? {});
    if (names.length === 0) return null;
    if (names.length > 1) throw refuse('UPDATE_METADATA_INVALID', `director lists ${names.length} targets; one per device is expected`);
    const name = names[0] as string;
    const d = await director.getTargetInfo(name);
    if (d === undefined) throw refuse('UPDATE_METADATA_INVALID', 'director target vanished');
    const custom = d.custom as Record<string, unknown>;
    if (custom['deviceId'] !== this.#o.deviceId) {
      throw refuse('UPDATE_NOT_FOR_THIS_DEVICE', `director target is for ${String(custom['deviceId']).slice(0, 64)}, this device is ${this.#o.deviceId}`);
    }
    const counter = custom['counter'];
    if (typeof counter !== 'number' || !Number.isSafeInteger(counter) || counter !== doc.signed?.version) {
      throw refuse('UPDATE_METADATA_INVALID', `director counter ${String(counter)} is not its metadata version ${String(doc.signed?.version)}`);
    }
    // Uptane: the director's counter never goes back below the one of the last install.
    if (counter < state.counter) throw refuse('UPDATE_ROLLBACK', `director counter ${counter} below ${state.counter}`);
    const version = custom['version'];
    const releaseId = custom['releaseId'];
    const minVersion = custom['minVersion'] ?? null;
    if (typeof version !== 'string' || parseSemver(version) === null || typeof releaseId !== 'string' || (minVersion !== null && (typeof minVersion !== 'string' || parseSemver(minVersion) === null))) {
      throw refuse('UPDATE_METADATA_INVALID', 'director target custom is malformed');
    }
    const sha256 = sha256Of(d);
    if (sha256 === null) throw refuse('UPDATE_METADATA_INVALID', 'director target has no sha256');
    return { targetName: name, releaseId, version, minVersion: minVersion as string | null, counter, length: d.length, sha256 };
  }

  /** Uptane: the image repository lists the same target with the same length and sha256. */
  async #agree(image: Updater, a: AssignedUpdate): Promise<void> {
    const i = await image.getTargetInfo(a.targetName);
    if (i === undefined) throw refuse('UPDATE_DIRECTOR_MISMATCH', `image repository has no target ${a.targetName.slice(0, 100)}`);
    if (i.length !== a.length || sha256Of(i) !== a.sha256) {
      throw refuse('UPDATE_DIRECTOR_MISMATCH', `director and image repository disagree on ${a.targetName.slice(0, 100)} (length ${a.length}/${i.length})`);
    }
  }
}

async function refresh(u: Updater): Promise<void> {
  try {
    await u.refresh();
  } catch (e) {
    throw classifyTufError(e);
  }
}

function sha256Of(t: TargetFile): string | null {
  const h = t.hashes['sha256'];
  return typeof h === 'string' && /^[0-9a-f]{64}$/.test(h) ? h : null;
}

function maxVersion(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return compareSemver(a, b) >= 0 ? a : b;
}
