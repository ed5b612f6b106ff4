import fastifySwagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Clock } from '../context/clock.js';
import { NoQuery } from '@fleetkey/protocol';
import type { RefusalAudit } from '../modules/auth/refusal-audit.js';
import { installOperatorAuth, type RequestLimits } from './auth-hook.js';
import { installErrorHandlers } from './error-handler.js';
import { hardenApp, hardenedServerOptions } from './harden-app.js';
import './fastify-types.js';
import { deviceRoutes } from './routes/device-routes.js';
import { nameRoutes } from './routes/name-routes.js';
import { operatorRoutes } from './routes/operator-routes.js';
import { caRoutes } from './routes/ca-routes.js';
import { pkiRoutes } from './routes/pki-routes.js';
import type { CaModule } from '../modules/ca/ca-module.js';
import type { EnrollmentCrls } from '../modules/provisioning/enrollment-crls.js';
import type { EnrollmentService } from '../modules/provisioning/enrollment-service.js';
import type { EvidenceService } from '../modules/provisioning/evidence-service.js';
import { enrollmentRoutes } from './routes/enrollment-routes.js';
import { evidenceRoutes } from './routes/evidence-routes.js';
import { dataRoutes } from './routes/data-routes.js';
import { streamRoutes } from './routes/stream-routes.js';
import { clusterRoutes } from './routes/cluster-routes.js';
import type { ClusterModule } from '../modules/cluster/cluster-module.js';
import type { StreamHub } from '../modules/telemetry/stream-hub.js';
import type { CommandService } from '../modules/commands/command-service.js';
import type { DataService } from '../modules/telemetry/data-service.js';
import type { OperatorServices } from './routes/services.js';
import { opsRoutes } from './routes/ops-routes.js';
import type { FleetkeyMetrics } from '../modules/metrics/metrics.js';
import type { Readiness } from '../modules/metrics/readiness.js';
import type { UpdatesModule } from '../modules/updates/updates-module.js';
import { updateRoutes } from './routes/update-routes.js';
import type { PostureService } from '../modules/posture/posture-service.js';
import { postureRoutes } from './routes/posture-routes.js';
import type { AttestationModule } from '../modules/attestation/attestation-module.js';
import { attestationRoutes } from './routes/attestation-routes.js';
import type { ConsoleModule } from '../modules/console/console-module.js';
import { consoleSessionRoutes } from './routes/console-session-routes.js';

export interface HttpOptions {
  readonly bodyLimitBytes: number;
  readonly requestTimeoutMs: number;
  readonly logger: FastifyBaseLogger;
  readonly clock: Clock;
  readonly limits: RequestLimits;
  readonly refusals: RefusalAudit;
  readonly ca: CaModule;
  readonly publicUrl: () => string;
  readonly enrollments: EnrollmentService;
  readonly enrollmentCrls: EnrollmentCrls;
  readonly evidence: EvidenceService;
  readonly data: DataService;
  readonly commands: CommandService;
  readonly hub: StreamHub;
  /** Routes of modules that register themselves on /v1 (rollouts, ...). */
  readonly moduleRoutes?: ReadonlyArray<(v1: FastifyInstance) => Promise<void>>;
  readonly ops: { metrics: FleetkeyMetrics | null; allowedNetwork: (ip: string) => boolean; readiness: Readiness };
  readonly updates: UpdatesModule;
  readonly posture: PostureService;
  readonly attestation?: AttestationModule;
  readonly cluster: ClusterModule;
  /** The web console (`/`) and its cookie sessions; absent, only bearer tokens authenticate. */
  readonly console?: ConsoleModule;
}

export async function buildHttpApp(services: OperatorServices, options: HttpOptions): Promise<FastifyInstance> {
  const app = Fastify(hardenedServerOptions(options)).withTypeProvider<TypeBoxTypeProvider>();
  hardenApp(app as unknown as FastifyInstance);
  installErrorHandlers(app as unknown as FastifyInstance, services.audit, options.refusals);
  options.refusals.start();
  app.addHook('onClose', async () => options.refusals.close());

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Fleetkey operator API', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  app.get('/healthz', { schema: { hide: true, querystring: NoQuery } }, async () => ({ status: 'ok' }));
  await app.register(pkiRoutes, { ca: options.ca });
  await app.register(opsRoutes, { ...options.ops, tokens: services.tokens, refusals: options.refusals, limits: options.limits, clock: options.clock });
  await options.console?.register(app as unknown as FastifyInstance);

  await app.register(
    async (v1) => {
      const sessions = options.console?.sessions;
      installOperatorAuth(v1, { tokens: services.tokens, refusals: options.refusals, limits: options.limits, clock: options.clock, ...(sessions === undefined ? {} : { sessions }) });
      v1.get('/openapi.json', { config: { permission: 'api:read' }, schema: { hide: true, querystring: NoQuery } }, async () => app.swagger());
      await v1.register(deviceRoutes, { services, online: () => options.console?.online() ?? null });
      await v1.register(nameRoutes, { services });
      await v1.register(operatorRoutes, { services });
      await v1.register(caRoutes, { ca: options.ca, publicUrl: options.publicUrl });
      await v1.register(enrollmentRoutes, { enrollments: options.enrollments, crls: options.enrollmentCrls });
      await v1.register(evidenceRoutes, { evidence: options.evidence });
      await v1.register(dataRoutes, { data: options.data, commands: options.commands });
      await v1.register(streamRoutes, { hub: options.hub });
      for (const register of options.moduleRoutes ?? []) await register(v1 as unknown as FastifyInstance);
      await v1.register(updateRoutes, { updates: options.updates });
      await v1.register(postureRoutes, { posture: options.posture });
      if (options.attestation !== undefined) await v1.register(attestationRoutes, { attestation: options.attestation });
      await v1.register(clusterRoutes, { cluster: options.cluster });
      if (sessions !== undefined) await v1.register(consoleSessionRoutes, { sessions });
    },
    { prefix: '/v1' },
  );
  await app.ready();
  return app as unknown as FastifyInstance;
}
