import type { Logger } from 'pino';
import type { Clock } from '../../context/clock.js';
import { systemContext } from '../../context/op-context.js';
import type { UnitOfWork } from '../../context/unit-of-work.js';
import type { SecretBox } from '../../secrets/secret-box.js';
import type { Store } from '../../store/open-store.js';
import type { NameService } from '../registry/name-service.js';
import type { EventBus } from '../events/event-bus.js';
import { ArtifactStore } from './artifact-store.js';
import { DesiredReleases } from './desired-releases.js';
import { Director } from './director.js';
import { DEFAULT_LIFETIMES, ImageRepository, type Lifetimes } from './image-repository.js';
import { OnlineKeys } from './online-keys.js';
import { ReleaseService } from './release-service.js';
import { RepoReader } from './repo-reader.js';
import { TufStore } from './tuf-store.js';

export interface UpdatesModuleDeps {
  readonly store: Store;
  readonly uow: UnitOfWork;
  readonly box: SecretBox;
  readonly clock: Clock;
  readonly dataDir: string;
  readonly names: NameService;
  readonly bus: EventBus;
  readonly logger: Logger;
  readonly lifetimes?: Partial<Lifetimes>;
  /** Largest artifact accepted (default 4 GiB). */
  readonly maxArtifactBytes?: number;
  /** How often the timestamp's expiry is checked (default 60 s). */
  readonly refreshIntervalMs?: number;
}

export interface UpdatesModule {
  readonly desired: DesiredReleases;
  readonly releases: ReleaseService;
  readonly repository: ImageRepository;
  readonly director: Director;
  readonly artifacts: ArtifactStore;
  readonly keys: OnlineKeys;
  readonly reader: RepoReader;
  start(): void;
  stop(): Promise<void>;
}

/** Builds the updates module (TUF image repository, Uptane director, releases); start/stop run its re-signer. */
export async function createUpdatesModule(deps: UpdatesModuleDeps): Promise<UpdatesModule> {
  const lifetimes: Lifetimes = { ...DEFAULT_LIFETIMES, ...deps.lifetimes };
  const artifacts = new ArtifactStore(deps.dataDir, deps.maxArtifactBytes ?? 4 * 1024 ** 3);
  await artifacts.init();
  const keys = await OnlineKeys.load(deps.store, deps.box, deps.clock);
  const tuf = new TufStore(deps.store);
  const repository = new ImageRepository(deps.uow, tuf, keys, artifacts, lifetimes);
  const desired = new DesiredReleases(deps.store, deps.uow, deps.names);
  const releases = new ReleaseService(deps.store, deps.uow, repository, artifacts);
  const director = new Director(deps.store, keys, deps.clock, lifetimes);
  const reader = new RepoReader(tuf, artifacts, director, deps.clock);
  // The cached timestamp is dropped as soon as a change this node committed is published.
  const unsubscribe = deps.bus.subscribe((e) => {
    if (e.type === 'updates.targets_published' || e.type === 'updates.root_rotated') reader.invalidate();
  });
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> = Promise.resolve();
  const tick = () => {
    running = repository
      .refreshIfDue(systemContext('updates'), deps.clock.now())
      .then((did) => {
        if (did) reader.invalidate();
      })
      .catch((e: unknown) => deps.logger.error({ err: e }, 'timestamp re-signing failed'));
  };
  return {
    desired,
    releases,
    repository,
    director,
    artifacts,
    keys,
    reader,
    start() {
      tick();
      timer = setInterval(tick, deps.refreshIntervalMs ?? 60_000);
      timer.unref();
    },
    async stop() {
      unsubscribe();
      if (timer !== null) clearInterval(timer);
      timer = null;
      await running;
    },
  };
}
