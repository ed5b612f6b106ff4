import { randomUUID } from 'node:crypto';
import fastifySwagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Clock } from '../context/clock.js';
import { NAME_MAX_LENGTH, NoQuery } from '@fleetkey/protocol';
import type { RefusalAudit } from '../modules/auth/refusal-audit.js';
import { installOperatorAuth, type RequestLimits } from './auth-hook.js';
import { clientErrorHandler, frameworkErrors, installErrorHandlers } from './error-handler.js';
import { installInputGuard } from './input-guard.js';
import { installStrictJson } from './json-body.js';
import { logSerializers } from './log-redaction.js';
import { requireRouteSchemas } from './route-schemas.js';
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
import type { StreamHub } from '../modules/telemetry/stream-hub.js';
import type { CommandService } from '../modules/commands/command-service.js';
import type { DataService } from '../modules/telemetry/data-service.js';
import type { OperatorServices } from './routes/services.js';
import { validatorCompiler } from './validators.js';

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
}

export async function buildHttpApp(services: OperatorServices, options: HttpOptions): Promise<FastifyInstance> {
  const logger = options.logger.child({}, { serializers: logSerializers });
  const app = Fastify({
    // Request log lines carry the path and the query's parameter names, never a query value.
    loggerInstance: logger,
    bodyLimit: options.bodyLimitBytes,
    // The longest legal path parameter is a name (NAME_MAX_LENGTH); up to twice that the schema
    // answers (VALIDATION_FAILED), past it the router does (URI_TOO_LONG). Node's 16 KiB header
    // limit bounds the whole request line (HEADERS_TOO_LARGE).
    routerOptions: { maxParamLength: 2 * NAME_MAX_LENGTH },
    frameworkErrors,
    clientErrorHandler: clientErrorHandler(logger),
    requestTimeout: options.requestTimeoutMs,
    // Node checks request deadlines on this interval (default 30 s): a 408 should come close to the deadline.
    http: { headersTimeout: options.requestTimeoutMs, requestTimeout: options.requestTimeoutMs, connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(options.requestTimeoutMs / 4))) },
    // Request ids are ours (CSPRNG), never taken from a client header, so audit entries cannot be
    // made to carry an attacker-chosen id.
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    return503OnClosing: true,
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  requireRouteSchemas(app as unknown as FastifyInstance);
  installStrictJson(app as unknown as FastifyInstance);
  installInputGuard(app as unknown as FastifyInstance);
  app.decorateRequest('actor', null);
  app.addHook('onSend', async (req, reply) => {
    reply.header('x-request-id', req.id);
    reply.header('cache-control', 'no-store');
  });
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

  await app.register(
    async (v1) => {
      installOperatorAuth(v1, { tokens: services.tokens, refusals: options.refusals, limits: options.limits, clock: options.clock });
      v1.get('/openapi.json', { config: { permission: 'api:read' }, schema: { hide: true, querystring: NoQuery } }, async () => app.swagger());
      await v1.register(deviceRoutes, { services });
      await v1.register(nameRoutes, { services });
      await v1.register(operatorRoutes, { services });
      await v1.register(caRoutes, { ca: options.ca, publicUrl: options.publicUrl });
      await v1.register(enrollmentRoutes, { enrollments: options.enrollments, crls: options.enrollmentCrls });
      await v1.register(evidenceRoutes, { evidence: options.evidence });
      await v1.register(dataRoutes, { data: options.data, commands: options.commands });
      await v1.register(streamRoutes, { hub: options.hub });
    },
    { prefix: '/v1' },
  );
  await app.ready();
  return app as unknown as FastifyInstance;
}
