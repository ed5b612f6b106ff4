import { DURATION_PATTERN } from '@fleetkey/protocol';
import { Type, type Static } from '@sinclair/typebox';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/*
 * Every setting says what it does in `description`; `env` and `flag` name the environment variable
 * and the `fleetkey serve` flag that set it. docs/config.md is generated from this schema
 * (config-reference.ts) and a test keeps the two equal, and checks every `env` and `flag` works.
 */

/** The one typed configuration object; defaults here, overridden by file, then environment, then flags. */
export const ConfigSchema = Type.Object(
  {
    dataDir: Type.String({
      minLength: 1,
      description: 'Directory of the SQLite database, master key, CA keys, admin token and server.json (created 0700). Relative paths are resolved from the working directory; default `./fleetkey-data`.',
      env: 'FLEETKEY_DATA_DIR',
      flag: '--data-dir',
    }),
    databaseUrl: Type.Optional(
      Type.String({ pattern: '^postgres(ql)?://', description: '`postgres://…` selects PostgreSQL (needs the btree_gist extension); unset means SQLite in the data dir.', env: 'DATABASE_URL', flag: '--database-url' }),
    ),
    http: Type.Object(
      {
        host: Type.String({ minLength: 1, default: '127.0.0.1', description: 'Listen address of the operator API (and /metrics, /readyz, /pki).', env: 'FLEETKEY_HOST', flag: '--host' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8400, description: 'Listen port of the operator API (0: any free port).', env: 'FLEETKEY_PORT', flag: '--port' }),
        bodyLimitBytes: Type.Integer({ minimum: 1024, maximum: 16 * 1024 * 1024, default: 64 * 1024, description: 'Largest request body on both HTTP listeners.' }),
        requestTimeoutMs: Type.Integer({ minimum: 100, maximum: 600_000, default: 30_000, description: 'A request (headers and body) not received within this is answered 408 and closed.' }),
        rateLimit: Type.Object(
          {
            perTokenPerMinute: Type.Integer({ minimum: 1, default: 30_000, description: 'Sustained requests per minute per API token (`fleetkey manufacture` runs ~300/s on one token; the CLI waits out a 429).' }),
            perTokenBurst: Type.Integer({ minimum: 1, default: 3_000, description: 'Burst per API token.' }),
            perSourcePerMinute: Type.Integer({ minimum: 1, default: 60_000, description: 'Sustained requests per minute per source address, spent before the credential is looked at.' }),
            perSourceBurst: Type.Integer({ minimum: 1, default: 6_000, description: 'Burst per source address.' }),
          },
          { additionalProperties: false, default: {}, description: 'Request budgets of the operator API (token buckets): room for bulk work, a stop for a runaway or hostile client.' },
        ),
        refusalAuditWindowMs: Type.Integer({ minimum: 1000, maximum: 3_600_000, default: 60_000, description: 'Refusals at the API edge (401, 403, 429, schema errors) are audited as one entry per actor, code and window.' }),
      },
      { additionalProperties: false, default: {}, description: 'The operator listener (HTTP).' },
    ),
    deviceHttp: Type.Object(
      {
        host: Type.String({ minLength: 1, default: '127.0.0.1', description: 'Listen address of the device plane (HTTPS, client certificates requested).' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8443, description: 'Listen port of the device plane.', flag: '--device-port' }),
      },
      { additionalProperties: false, default: {}, description: 'The device plane: provisioning, renewal, session tokens.' },
    ),
    ca: Type.Object(
      {
        curve: Type.Union([Type.Literal('P-256'), Type.Literal('P-384')], { default: 'P-256', description: 'Curve of the CA keys created at the first start.' }),
        keystore: Type.Union(
          [
            Type.Object({ type: Type.Literal('file') }, { additionalProperties: false }),
            Type.Object(
              {
                type: Type.Literal('pkcs11'),
                module: Type.String({ minLength: 1 }),
                tokenLabel: Type.String({ minLength: 1, maxLength: 32 }),
                pinFile: Type.String({ minLength: 1 }),
              },
              { additionalProperties: false },
            ),
          ],
          {
            default: { type: 'file' },
            description: 'Where the CA keys live: `{"type":"file"}` (AES-256-GCM files under the master key) or `{"type":"pkcs11","module":"/usr/lib/softhsm/libsofthsm2.so","tokenLabel":"fleetkey-ca","pinFile":"./pin"}` (the PIN file must be 0600).',
          },
        ),
        defaultValidity: Type.String({ pattern: DURATION_PATTERN, default: '30d', description: 'Validity of operational certificates unless an enrollment says otherwise (at least 1h).' }),
        renewalGrace: Type.String({ pattern: DURATION_PATTERN, default: '1h', description: 'How long a superseded certificate keeps authenticating after renewal.' }),
        crlInterval: Type.String({ pattern: DURATION_PATTERN, default: '1h', description: 'The issuing and manufacturing CRLs are re-signed on every revocation and at least this often.' }),
        rootCrlValidity: Type.String({ pattern: DURATION_PATTERN, default: '365d', description: "nextUpdate of the root's CRL, pre-signed while the root key is here: it must outlast the time the root key is kept offline." }),
        publicUrl: Type.Optional(Type.String({ pattern: '^https?://', description: "Base URL put in certificates for the CRL and OCSP (default: the operator listener's URL). Set it before the first start." })),
        tlsDnsNames: Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { default: [], description: "Extra DNS names for the server's TLS certificate (localhost and loopback are always in)." }),
      },
      { additionalProperties: false, default: {}, description: 'The certificate authority.' },
    ),
    gateway: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'Run the MQTT gateway.' }),
        host: Type.String({ minLength: 1, default: '127.0.0.1', description: 'Listen address of the MQTT gateway.' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8883, description: 'MQTT over TLS port (IANA 8883); plain TCP is never offered.', flag: '--mqtt-port' }),
        maxPayloadBytes: Type.Integer({ minimum: 256, maximum: 1_048_576, default: 65_536, description: 'Largest PUBLISH payload (JSON); larger ones are refused (v5 0x99).' }),
        ingestBatch: Type.Integer({ minimum: 1, maximum: 10_000, default: 4096, description: 'Most messages one group commit writes.' }),
        ingestLingerMs: Type.Integer({
          minimum: 0,
          maximum: 100,
          default: 8,
          description: "How long a message waits for others before its commit starts. On SQLite a commit's fsync holds the event loop, so this bounds commits per second; it is also the added QoS 1 latency.",
        }),
        maxPublishesPerSecond: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1000, description: 'Sustained PUBLISH rate per device across its reconnects (burst: one second of it); beyond it DISCONNECT 0x96.' }),
        refusalAuditWindowMs: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 10_000, description: 'Refusals of one device (or source) with one code are audited as one row per this window, with a count.' }),
      },
      { additionalProperties: false, default: {}, description: 'The MQTT 3.1.1/5 gateway (TLS only).' },
    ),
    provisioning: Type.Object(
      {
        perSourcePerMinute: Type.Integer({ minimum: 1, default: 600, description: 'Provisioning requests per minute per source address (a factory or a fleet behind one NAT provisions many devices).' }),
        perSourceBurst: Type.Integer({ minimum: 1, default: 200, description: 'Burst per source address.' }),
        perDevicePerMinute: Type.Integer({ minimum: 1, default: 10, description: 'Provisioning requests per minute per device identity: a device retrying in a loop is slowed, others are not.' }),
        perDeviceBurst: Type.Integer({ minimum: 1, default: 5, description: 'Burst per device identity.' }),
        maxOutstandingNonces: Type.Integer({ minimum: 1, default: 100_000, description: 'Nonces outstanding (issued, unused, unexpired) at once, in total; past it the nonce route answers RATE_LIMITED.' }),
        maxOutstandingNoncesPerSource: Type.Integer({ minimum: 1, default: 1_000, description: 'Nonces outstanding at once per source address (per server node).' }),
        challengeSweepIntervalMs: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 60_000, description: 'How often expired provisioning challenges (nonces, TPM challenges, used token ids) are deleted.' }),
        crlRefreshIntervalMs: Type.Integer({ minimum: 100, maximum: 86_400_000, default: 300_000, description: 'How often the CRLs of outside enrollment anchors are checked for refresh (each is fetched before its nextUpdate).' }),
        crlFetchTimeoutMs: Type.Integer({ minimum: 100, maximum: 60_000, default: 5_000, description: 'Time budget of one CRL fetch, whole response included.' }),
        crlMaxBytes: Type.Integer({ minimum: 1024, maximum: 16 * 1024 * 1024, default: 16 * 1024 * 1024, description: 'Largest CRL fetched.' }),
      },
      { additionalProperties: false, default: {}, description: 'Provisioning on the device plane.' },
    ),
    metrics: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'Serve `GET /metrics` (Prometheus text format) on the operator listener.' }),
        allowNetworks: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
          default: [],
          maxItems: 64,
          description: 'CIDR ranges (e.g. `"10.20.0.0/16"`, `"127.0.0.1/32"`) whose scrapers need no token; everyone else needs a token whose role has metrics:read (monitoring, operator, admin).',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Prometheus metrics.' },
    ),
    logLevel: Type.Union(
      LOG_LEVELS.map((l) => Type.Literal(l)),
      { default: 'info', description: 'pino log level of both listeners and the gateway.', env: 'FLEETKEY_LOG_LEVEL' },
    ),
    rollouts: Type.Object(
      {
        tickIntervalMs: Type.Integer({ minimum: 50, maximum: 60_000, default: 1000, description: 'How often the rollout engine re-reads running rollouts from the store (timeouts, waves, pacing).' }),
      },
      { additionalProperties: false, default: {}, description: 'Staged rollouts (docs/rollouts.md).' },
    ),
    /** Measured-boot attestation (issue 13). */
    attestation: Type.Object(
      {
        sweepIntervalMs: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 1_000, description: "How often overdue devices are marked stale: a device is stale within its policy's maximum age plus this." }),
        nonceTtlMs: Type.Integer({ minimum: 1_000, maximum: 600_000, default: 60_000, description: 'Lifetime of a quote nonce.' }),
        maxNoncesPerDevice: Type.Integer({ minimum: 1, maximum: 64, default: 4, description: 'Outstanding quote nonces kept per device (older ones are dropped).' }),
        perDevicePerMinute: Type.Integer({ minimum: 1, default: 120, description: 'Device-plane attestation requests (nonce and quote) per minute per device.' }),
        perDeviceBurst: Type.Integer({ minimum: 1, default: 30, description: 'Burst of attestation requests per device.' }),
      },
      { additionalProperties: false, default: {}, description: 'Measured-boot attestation (issue 13).' },
    ),
    cluster: Type.Object(
      {
        url: Type.Optional(
          Type.String({
            pattern: '^nats://[^\\s]+$',
            maxLength: 512,
            description: 'nats://host:port (JetStream enabled): with a PostgreSQL `databaseUrl`, the node joins the cluster of every node sharing that database and bus. Unset: a single node (in-process bus, no NATS).',
            env: 'FLEETKEY_CLUSTER',
            flag: '--cluster',
          }),
        ),
        nodeId: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description: "This node's id (default: host-pid-random); unique in the cluster.", flag: '--node-id' })),
        heartbeatMs: Type.Integer({ minimum: 100, maximum: 60_000, default: 1_000, description: 'How often a node writes its heartbeat.' }),
        nodeTimeoutMs: Type.Integer({ minimum: 300, maximum: 600_000, default: 5_000, description: 'A node whose heartbeat is older than this is dead: its devices are marked offline.' }),
        storePollMs: Type.Integer({
          minimum: 50,
          maximum: 60_000,
          default: 500,
          description: 'Store fallback: how often a node reads revocations and status changes committed by others from the events table while the bus is down (and, at 5× this, while it is up, to catch a message lost in flight). The bound on a cross-node revocation without NATS.',
        }),
        telemetryStream: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', default: 'FLEETKEY_DATA', description: 'JetStream stream that receives every stored diagnostics/telemetry message.' }),
      },
      { additionalProperties: false, default: {}, description: 'Cluster membership (issue 15).' },
    ),
    webhooks: Type.Object(
      {
        allowInsecureHttp: Type.Boolean({ default: false, description: 'Allow `http://` webhook URLs off loopback (testing only).' }),
        allowPrivateDestinations: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
          default: [],
          maxItems: 64,
          description: 'CIDR ranges (e.g. `"127.0.0.1/32"`, `"10.20.0.0/16"`) that webhooks, decision webhooks and CRL fetches may reach although they are loopback, private, link-local or otherwise internal; refused by default.',
        }),
        timeoutMs: Type.Integer({ minimum: 100, maximum: 60_000, default: 10_000, description: 'Time budget of one webhook delivery.' }),
        maxAttempts: Type.Integer({ minimum: 1, maximum: 50, default: 12, description: 'Deliveries are retried with backoff up to this many attempts, then marked failed.' }),
      },
      { additionalProperties: false, default: {}, description: 'Outbound webhooks and other outbound requests.' },
    ),
    updates: Type.Object(
      {
        maxArtifactBytes: Type.Integer({ minimum: 1024, maximum: 64 * 1024 ** 3, default: 4 * 1024 ** 3, description: 'Largest update artifact accepted.' }),
        timestampLifetime: Type.String({ pattern: DURATION_PATTERN, default: '24h', description: 'Lifetime of the online timestamp metadata (re-signed at half of it).' }),
        snapshotLifetime: Type.String({ pattern: DURATION_PATTERN, default: '7d', description: 'Lifetime of the online snapshot metadata (re-signed at half of it).' }),
        directorLifetime: Type.String({ pattern: DURATION_PATTERN, default: '24h', description: "Lifetime of the director's per-device targets metadata (re-signed at half of it)." }),
      },
      { additionalProperties: false, default: {}, description: 'Signed updates (docs/updates.md): online metadata lifetimes.' },
    ),
  },
  { additionalProperties: false },
);

export type FleetkeyConfig = Static<typeof ConfigSchema>;
