import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import type { FleetkeyConfig } from './config/config-schema.js';
import { ADMIN_TOKEN_FILE, ensureDataDir, masterKey, SERVER_INFO_FILE, SQLITE_FILE, writeSecretFile } from './config/data-dir.js';
import { assertPrivateFile } from './config/secret-files.js';
import { systemClock, type Clock } from './context/clock.js';
import { systemContext } from './context/op-context.js';
import { UnitOfWork } from './context/unit-of-work.js';
import { buildHttpApp } from './http/build-app.js';
import type { OperatorServices } from './http/routes/services.js';
import { AuditLog } from './modules/audit/audit-log.js';
import { RefusalLimiter } from './modules/auth/refusal-limiter.js';
import { RefusalAudit } from './modules/auth/refusal-audit.js';
import { TokenService } from './modules/auth/token-service.js';
import { EventBus } from './modules/events/event-bus.js';
import { DEFAULT_DISPATCH, WebhookDispatcher } from './modules/events/webhook-dispatcher.js';
import { OutboundDestinations, type Resolver } from './modules/events/webhook-destinations.js';
import { WebhookService } from './modules/events/webhook-service.js';
import { BindingService } from './modules/registry/binding-service.js';
import { DeviceService } from './modules/registry/device-service.js';
import { createCaModule, type CaModule } from './modules/ca/ca-module.js';
import { buildDeviceApp } from './http/device-app.js';
import { InMemoryReplayGuard } from '@fleetkey/crypto';
import { parseDuration } from '@fleetkey/protocol';
import { RateLimiter } from './context/rate-limiter.js';
import { ProvisioningChallenges } from './modules/provisioning/challenges.js';
import { CrlRefresher } from './modules/provisioning/crl-refresher.js';
import { EnrollmentCrls } from './modules/provisioning/enrollment-crls.js';
import { EnrollmentService } from './modules/provisioning/enrollment-service.js';
import { EvidenceService } from './modules/provisioning/evidence-service.js';
import { ProvisioningService } from './modules/provisioning/provisioning-service.js';
import { SymmetricMethod } from './modules/provisioning/attestation/symmetric-method.js';
import { TpmMethod } from './modules/provisioning/attestation/tpm-method.js';
import { X509Method } from './modules/provisioning/attestation/x509-method.js';
import { CommandService, wirePayload } from './modules/commands/command-service.js';
import { createDeviceGateway } from './modules/gateway/device-gateway.js';
import { createAttestationModule, type AttestationModule } from './modules/attestation/attestation-module.js';
import type { Gateway } from './modules/gateway/index.js';
import { DataService } from './modules/telemetry/data-service.js';
import { IngestBatcher } from './modules/telemetry/ingest.js';
import { StreamHub } from './modules/telemetry/stream-hub.js';
import { DeviceCredentials } from './modules/auth/device-credentials.js';
import { SessionTokens } from './modules/auth/session-tokens.js';
import { NameService } from './modules/registry/name-service.js';
import { createRolloutsModule, type RolloutsModule } from './modules/rollouts/rollouts-module.js';
import { desiredReleasesPort } from './modules/rollouts/desired-releases.js';
import { FleetkeyMetrics } from './modules/metrics/metrics.js';
import { networkAllowList } from './modules/metrics/network-allow.js';
import { Readiness } from './modules/metrics/readiness.js';
import { createPostureModule, type PostureModule } from './modules/posture/posture-module.js';
import { attestationPostureProvider } from './modules/attestation/posture-findings.js';
import { releasePostureProvider } from './modules/updates/posture-findings.js';
import { createConsoleModule } from './modules/console/console-module.js';
import { SecretBox } from './secrets/secret-box.js';
import { createUpdatesModule, type UpdatesModule } from './modules/updates/updates-module.js';
import { openStore, type Store } from './store/open-store.js';
import { createClusterModule, type ClusterModule } from './modules/cluster/cluster-module.js';

export interface FleetkeyServer {
  readonly url: string;
  readonly config: FleetkeyConfig;
  readonly services: OperatorServices;
  readonly store: Store;
  readonly bus: EventBus;
  readonly http: FastifyInstance;
  /** The device plane (HTTPS, client certificates requested). */
  readonly deviceUrl: string;
  readonly ca: CaModule;
  readonly enrollments: EnrollmentService;
  /** The MQTT gateway (mqtts://), when enabled. */
  readonly gateway: Gateway | null;
  readonly mqttUrl: string | null;
  /** Update repository, director, releases and desired releases (issue 12). */
  readonly updates: UpdatesModule;
  /** The posture audit; modules built elsewhere add their finding providers with `posture.register`. */
  readonly posture: PostureModule;
  /** Measured-boot attestation (issue 13); null when the server does not listen. */
  readonly attestation: AttestationModule | null;
  /** Cluster membership (issue 15): a single node unless `cluster.url` is set. */
  readonly cluster: ClusterModule | null;
  /** Set only on the start that created the first admin token: shown once, never again. */
  readonly bootstrapAdminToken: string | null;
  /** Staged rollouts (service, engine); null when not listening. */
  readonly rollouts: RolloutsModule | null;
  /** Prometheus metrics (null when `metrics.enabled` is false or the server does not listen). */
  readonly metrics: FleetkeyMetrics | null;
  close(): Promise<void>;
}

export interface CreateOptions {
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly env?: NodeJS.ProcessEnv;
  /** Dispatcher timing (tests shorten the backoff). */
  readonly dispatch?: Partial<typeof DEFAULT_DISPATCH>;
  /** How webhook hosts are resolved (default: the system resolver); tests answer in-process. */
  readonly resolveHost?: Resolver;
  /** false: initialise (data dir, store, CA, admin token) and return without listening (`fleetkey init`). */
  readonly listen?: boolean;
  /** A worker of `fleetkey serve --workers N` without NATS: its bus is the primary's IPC (issue 15). */
  readonly workerBus?: boolean;
}

/** The composition root: builds every module, wires them through their interfaces, listens. */
export async function createServer(config: FleetkeyConfig, options: CreateOptions = {}): Promise<FleetkeyServer> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? pino({ level: config.logLevel, redact: ['req.headers.authorization'] });
  await ensureDataDir(config.dataDir);
  if (config.ca.keystore.type === 'pkcs11') assertPrivateFile(config.ca.keystore.pinFile);
  const key = await masterKey(config.dataDir, options.env);
  const box = new SecretBox(key);
  const store = await openStore({
    databaseUrl: config.databaseUrl,
    sqliteFile: join(config.dataDir, SQLITE_FILE),
    onIdleError: (e) => logger.warn({ err: e }, 'idle database connection failed'),
  });

  const audit = new AuditLog(store, clock);
  const bus = new EventBus((e) => logger.error({ err: e }, 'event listener failed'));
  const uow = new UnitOfWork(store, audit, bus, clock);
  const devices = new DeviceService(store, uow);
  const names = new NameService(store, uow);
  const bindings = new BindingService(store, uow, names, devices);
  const tokens = new TokenService(store, uow, clock);
  const destinations = new OutboundDestinations({
    allowInsecureHttp: config.webhooks.allowInsecureHttp,
    allowPrivateDestinations: config.webhooks.allowPrivateDestinations,
    resolve: options.resolveHost,
  });
  const webhooks = new WebhookService(store, uow, box, destinations);
  const services: OperatorServices = { devices, names, bindings, tokens, webhooks, audit };
  const posture = createPostureModule({ store, clock, logger });

  const ca = await createCaModule({
    store,
    uow,
    bus,
    clock,
    config,
    masterKey: key,
    logger,
    devices,
    bootstrapContext: systemContext('bootstrap'),
  });

  const u = config.updates;
  const updates = await createUpdatesModule({
    store, uow, box, bus, clock, dataDir: config.dataDir, names, logger,
    maxArtifactBytes: u.maxArtifactBytes,
    lifetimes: { timestampMs: parseDuration(u.timestampLifetime) ?? 86_400_000, snapshotMs: parseDuration(u.snapshotLifetime) ?? 604_800_000, directorMs: parseDuration(u.directorLifetime) ?? 86_400_000 },
  });

  const enrollments = new EnrollmentService(store, uow, box, config.ca.defaultValidity, destinations);
  const enrollmentCrls = new EnrollmentCrls(store, uow);
  // The provisioning module's CRL refresher (outside enrollment anchors); started with the listeners.
  const p = config.provisioning;
  const crlRefresher = new CrlRefresher(store, enrollmentCrls, clock, logger, p.crlRefreshIntervalMs ?? 300_000, {
    timeoutMs: p.crlFetchTimeoutMs ?? 5_000,
    maxBytes: p.crlMaxBytes ?? 16 * 1024 * 1024,
  }, destinations);
  enrollments.onCreated = () => void crlRefresher.kick();
  // Expired challenges are swept and outstanding nonces capped (the nonce route answers anyone).
  const challenges = new ProvisioningChallenges(store, clock, logger, {
    maxOutstanding: p.maxOutstandingNonces ?? 100_000,
    maxOutstandingPerSource: p.maxOutstandingNoncesPerSource ?? 1_000,
    sweepIntervalMs: p.challengeSweepIntervalMs ?? 60_000,
  });
  let deviceUrl = '';
  let mqttUrl: string | null = null;
  const provisioning = new ProvisioningService({
    uow,
    ca,
    devices,
    names,
    bindings,
    renewalGraceMs: parseDuration(config.ca.renewalGrace) ?? 3_600_000,
    endpoints: () => ({ deviceUrl, mqttUrl }),
    enrollments,
    store,
    destinations,
  });

  let bootstrapAdminToken: string | null = null;
  if (!(await tokens.hasActiveAdmin())) {
    const created = await tokens.create(systemContext('bootstrap'), 'admin', 'bootstrap admin');
    bootstrapAdminToken = created.secret;
    await writeSecretFile(join(config.dataDir, ADMIN_TOKEN_FILE), `${created.secret}\n`);
  }

  const dispatcher = new WebhookDispatcher(store, box, clock, logger, destinations, {
    ...DEFAULT_DISPATCH,
    timeoutMs: config.webhooks.timeoutMs,
    maxAttempts: config.webhooks.maxAttempts,
    ...options.dispatch,
  });
  // Only events that wrote deliveries wake the dispatcher: a connect storm must not cost two
  // outbox queries per connection when no webhook listens (pending rows are picked up at start).
  const unsubscribe = bus.subscribe((e) => {
    if (e.deliveries > 0) dispatcher.kick();
  });
  dispatcher.start();

  if (options.listen === false) {
    const close = async () => {
      unsubscribe();
      await dispatcher.stop();
      await ca.close();
      await store.close();
      box.destroy();
      key.fill(0);
    };
    return { url: '', deviceUrl: '', config, services, store, bus, http: undefined as never, ca, enrollments, gateway: null, mqttUrl: null, updates, posture, attestation: null, cluster: null, bootstrapAdminToken, metrics: null, rollouts: null, close };
  }

  const sessions = await SessionTokens.open(join(config.dataDir, 'ca'), key, `urn:fleetkey:${ca.authorities.root().row.id}`);
  const credentials = new DeviceCredentials(store, ca, enrollments, sessions, clock);
  const commands = new CommandService(store, uow, clock);
  const data = new DataService(store);
  const hub = new StreamHub();
  // Metrics read the gateway's counters when scraped (it is created below, after the listeners).
  let gatewayForMetrics: Gateway | null = null;
  const metrics = config.metrics.enabled ? new FleetkeyMetrics({ store, gateway: () => gatewayForMetrics?.stats() ?? null }) : null;
  const readiness = new Readiness(store);
  // Joined before any listener: a node accepts devices only once it hears the cluster (issue 15).
  const cluster = await createClusterModule({ config, store, uow, events: bus, clock, logger, workerBus: options.workerBus === true });
  const ingest = new IngestBatcher(store, config.gateway.ingestBatch, (m) => {
    hub.publish(m);
    cluster.stored(m);
  }, config.gateway.ingestLingerMs, metrics ?? undefined);
  const a = config.attestation;
  const attestation = createAttestationModule({ store, uow, clock, devices, logger, events: bus }, { sweepIntervalMs: a.sweepIntervalMs, nonceTtlMs: a.nonceTtlMs, maxNoncesPerDevice: a.maxNoncesPerDevice, perDevicePerMinute: a.perDevicePerMinute, perDeviceBurst: a.perDeviceBurst });
  await attestation.start();
  posture.register(attestationPostureProvider(store.db));
  posture.register(releasePostureProvider(store.db));
  const consoleModule = createConsoleModule({ store, uow, tokens, clock });
  const rollouts = createRolloutsModule({ store, uow, bus, clock, logger, tickIntervalMs: config.rollouts.tickIntervalMs, desired: desiredReleasesPort(updates.desired) });
  let publicUrl = config.ca.publicUrl ?? '';
  const rl = config.http.rateLimit;
  const http = await buildHttpApp(services, {
    bodyLimitBytes: config.http.bodyLimitBytes,
    requestTimeoutMs: config.http.requestTimeoutMs,
    logger,
    clock,
    limits: { perSource: new RateLimiter(rl.perSourcePerMinute, rl.perSourceBurst), perToken: new RateLimiter(rl.perTokenPerMinute, rl.perTokenBurst) },
    refusals: new RefusalAudit(audit, clock, config.http.refusalAuditWindowMs),
    ca,
    publicUrl: () => publicUrl,
    enrollments,
    enrollmentCrls,
    evidence: new EvidenceService(store, uow, devices),
    data,
    commands,
    hub,
    moduleRoutes: [rollouts.routes],
    updates,
    posture: posture.service,
    attestation,
    ops: { metrics, allowedNetwork: networkAllowList(config.metrics.allowNetworks), readiness },
    cluster,
    console: consoleModule,
  });
  consoleModule.start();
  await http.listen({ host: config.http.host, port: config.http.port });
  const url = listenUrl('http', http, config.http.host);
  readiness.listener('operatorListener', () => http.server.listening);
  if (publicUrl === '') publicUrl = url;
  destinations.protectOwnPort(portOf(http));
  ca.start(publicUrl);
  const deviceHttp = await buildDeviceApp({
    ca,
    audit,
    logger,
    bodyLimitBytes: config.http.bodyLimitBytes,
    requestTimeoutMs: config.http.requestTimeoutMs,
    provisioning: {
      service: provisioning,
      x509: new X509Method(ca.authorities, enrollmentCrls),
      symmetric: new SymmetricMethod(enrollments, new InMemoryReplayGuard()),
      tpm: new TpmMethod(),
      store,
      audit,
      clock,
      // Per source address and per identity (DESIGN.md §4): a fleet behind one NAT still fits.
      // Cluster-wide when clustered: N nodes allow the configured rate, not N times it.
      perSource: cluster.rateLimiter('provision-source', config.provisioning.perSourcePerMinute, config.provisioning.perSourceBurst),
      perDevice: cluster.rateLimiter('provision-device', config.provisioning.perDevicePerMinute, config.provisioning.perDeviceBurst),
      challenges,
    },
    sessions: { uow, credentials, sessions },
    updates: { updates, credentials },
    attestation,
    ...(metrics === null ? {} : { metrics }),
  });
  await deviceHttp.listen({ host: config.deviceHttp.host, port: config.deviceHttp.port });
  deviceUrl = listenUrl('https', deviceHttp, config.deviceHttp.host);
  readiness.listener('deviceListener', () => deviceHttp.server.listening);
  destinations.protectOwnPort(portOf(deviceHttp));
  let deviceGateway: Awaited<ReturnType<typeof createDeviceGateway>> | null = null;
  let link: ReturnType<ClusterModule['link']> | null = null;
  if (config.gateway.enabled) {
    deviceGateway = await createDeviceGateway({
      store, uow, audit, bus, clock, ca, credentials, ingest, commands, logger,
      limiter: new RefusalLimiter(),
      listen: { host: config.gateway.host, port: config.gateway.port },
      maxPayloadBytes: config.gateway.maxPayloadBytes,
      maxPublishesPerSecond: config.gateway.maxPublishesPerSecond,
      refusalAuditWindowMs: config.gateway.refusalAuditWindowMs,
      attestation: { contained: (id) => attestation.service.contained(id), admit: (id) => attestation.service.admit(id) },
      ...(metrics === null ? {} : { metrics }),
      cluster: { nodeId: cluster.nodeId, publishRate: cluster.publishRate, opened: (id) => link?.opened(id), closed: (id) => link?.closed(id) },
    });
    const gw = deviceGateway.gateway;
    gatewayForMetrics = gw;
    readiness.listener('gateway', () => gw.listening());
    const a = deviceGateway.gateway.address();
    destinations.protectOwnPort(a.port);
    mqttUrl = `mqtts://${config.gateway.host.includes(':') ? `[${config.gateway.host}]` : config.gateway.host}:${a.port}`;
  }
  // A command sent while its device is online is pushed at once (by whichever node holds it);
  // otherwise it waits for the reconnect.
  if (deviceGateway !== null) {
    const gw = deviceGateway.gateway;
    consoleModule.countOnline(() => gw.connectionCount());
    // A released device gets the commands held while it was quarantined (issue 13).
    attestation.service.onContainment = (id, quarantined) => {
      if (quarantined || !gw.isConnected(id)) return;
      void commands.takeFor(id).then((rows) => {
        for (const r of rows) gw.sendCommand(id, r.id, wirePayload(r));
      }).catch((e: unknown) => logger.error({ err: e }, 'command push after release failed'));
    };
    attestation.service.requester = (id) => gw.requestAttestation(id, Buffer.from(JSON.stringify({ requestedAt: new Date(clock.now()).toISOString() })));
    const l = cluster.link(deviceGateway.gateway, commands);
    link = l;
    commands.onSent = (row) => l.commandSent(row.name_id);
  }
  await cluster.start({ url, deviceUrl, mqttUrl });
  crlRefresher.start();
  challenges.start();
  rollouts.start();
  updates.start();
  const bundle = ca.authorities.root().row.certificate_pem + ca.authorities.trusted('issuing').map((a) => a.row.certificate_pem).join('');
  await writeFile(join(config.dataDir, 'ca-bundle.pem'), bundle, { mode: 0o644 });
  await writeSecretFile(join(config.dataDir, SERVER_INFO_FILE), `${JSON.stringify({ url, deviceUrl, mqttUrl, pid: process.pid })}\n`);

  return {
    url,
    config,
    services,
    store,
    bus,
    http,
    deviceUrl,
    ca,
    enrollments,
    gateway: deviceGateway?.gateway ?? null,
    mqttUrl,
    updates,
    posture,
    attestation,
    cluster,
    bootstrapAdminToken,
    rollouts,
    metrics,
    close: async () => {
      unsubscribe();
      await rollouts.stop();
      await attestation.stop();
      await updates.stop();
      await crlRefresher.stop();
      await challenges.stop();
      consoleModule.stop();
      await deviceGateway?.close();
      await cluster.close();
      await deviceHttp.close();
      await http.close();
      await dispatcher.stop();
      await ca.close();
      await store.close();
      metrics?.close();
      box.destroy();
      key.fill(0);
    },
  };
}

function portOf(app: FastifyInstance): number {
  const addr = app.server.address();
  return typeof addr === 'object' && addr !== null ? addr.port : 0;
}

function listenUrl(scheme: 'http' | 'https', app: FastifyInstance, host: string): string {
  const port = portOf(app);
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
