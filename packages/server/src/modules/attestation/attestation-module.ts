import type { Logger } from 'pino';
import type { Clock } from '../../context/clock.js';
import { RateLimiter } from '../../context/rate-limiter.js';
import type { UnitOfWork } from '../../context/unit-of-work.js';
import type { Store } from '../../store/open-store.js';
import type { DeviceService } from '../registry/device-service.js';
import { AttestationService, type AttestationOptions } from './attestation-service.js';
import { AttestationPolicies } from './policy-service.js';

export interface AttestationModuleOptions extends Partial<AttestationOptions> {
  /** How often overdue devices are looked for (default 1 s; a device goes stale within one interval of its policy plus this). */
  readonly sweepIntervalMs?: number;
  /** Device-plane attestation requests (nonce + quote) per device: a device cannot grow the audit log or the nonce table at will. */
  readonly perDevicePerMinute?: number;
  readonly perDeviceBurst?: number;
}

export interface AttestationModule {
  readonly service: AttestationService;
  readonly policies: AttestationPolicies;
  /** Per-device budget of the device-plane attestation routes. */
  readonly limiter: RateLimiter;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Builds the attestation module; start() loads the quarantine set and starts the staleness sweeper. */
export function createAttestationModule(d: { store: Store; uow: UnitOfWork; clock: Clock; devices: DeviceService; logger: Logger }, o: AttestationModuleOptions = {}): AttestationModule {
  const policies = new AttestationPolicies(d.store, d.uow);
  const service = new AttestationService(d.store, d.uow, d.clock, policies, d.devices, d.logger, {
    nonceTtlMs: o.nonceTtlMs ?? 60_000,
    maxNoncesPerDevice: o.maxNoncesPerDevice ?? 4,
  });
  const every = o.sweepIntervalMs ?? 1_000;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;
  const tick = () => {
    running = service
      .sweep()
      .catch((err: unknown) => d.logger.error({ err }, 'attestation sweep failed'))
      .finally(() => {
        if (!stopped) {
          timer = setTimeout(tick, every);
          timer.unref();
        }
      });
  };
  return {
    service,
    policies,
    limiter: new RateLimiter(o.perDevicePerMinute ?? 120, o.perDeviceBurst ?? 30),
    async start() {
      await service.load();
      stopped = false;
      timer = setTimeout(tick, every);
      timer.unref();
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await running;
    },
  };
}
