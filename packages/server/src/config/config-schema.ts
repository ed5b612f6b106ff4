import { DURATION_PATTERN } from '@fleetkey/protocol';
import { Type, type Static } from '@sinclair/typebox';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The one typed configuration object; defaults here, overridden by file, then environment. */
export const ConfigSchema = Type.Object(
  {
    dataDir: Type.String({ minLength: 1 }),
    databaseUrl: Type.Optional(Type.String({ pattern: '^postgres(ql)?://' })),
    http: Type.Object(
      {
        host: Type.String({ minLength: 1, default: '127.0.0.1' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8400 }),
        bodyLimitBytes: Type.Integer({ minimum: 1024, maximum: 16 * 1024 * 1024, default: 64 * 1024 }),
        /** A request (headers and body) not received within this is answered 408 and closed. */
        requestTimeoutMs: Type.Integer({ minimum: 100, maximum: 600_000, default: 30_000 }),
        /**
         * Request budgets of the operator API (token buckets: a sustained rate and a burst). The
         * defaults leave room for bulk work (`fleetkey manufacture` runs ~300 requests/s on one
         * token; the CLI waits out a 429's Retry-After) and stop a runaway or hostile client.
         */
        rateLimit: Type.Object(
          {
            perTokenPerMinute: Type.Integer({ minimum: 1, default: 30_000 }),
            perTokenBurst: Type.Integer({ minimum: 1, default: 3_000 }),
            perSourcePerMinute: Type.Integer({ minimum: 1, default: 60_000 }),
            perSourceBurst: Type.Integer({ minimum: 1, default: 6_000 }),
          },
          { additionalProperties: false, default: {} },
        ),
        /** Refusals at the API edge are audited as one entry per actor, code and window. */
        refusalAuditWindowMs: Type.Integer({ minimum: 1000, maximum: 3_600_000, default: 60_000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    deviceHttp: Type.Object(
      {
        host: Type.String({ minLength: 1, default: '127.0.0.1' }),
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8443 }),
      },
      { additionalProperties: false, default: {} },
    ),
    ca: Type.Object(
      {
        curve: Type.Union([Type.Literal('P-256'), Type.Literal('P-384')], { default: 'P-256' }),
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
          { default: { type: 'file' } },
        ),
        /** Validity of operational certificates unless an enrollment says otherwise (min 1h). */
        defaultValidity: Type.String({ pattern: DURATION_PATTERN, default: '30d' }),
        /** How long a superseded certificate keeps authenticating after renewal. */
        renewalGrace: Type.String({ pattern: DURATION_PATTERN, default: '1h' }),
        /** The CRL is re-signed on every revocation and at least this often. */
        crlInterval: Type.String({ pattern: DURATION_PATTERN, default: '1h' }),
        /**
         * nextUpdate of the root's CRL, pre-signed when the root key is here (first start,
         * `fleetkey ca sign-root-crl`): it must outlast the time the root key is kept offline.
         */
        rootCrlValidity: Type.String({ pattern: DURATION_PATTERN, default: '365d' }),
        /** Base URL put in certificates for the CRL and OCSP (default: the operator listener's URL). */
        publicUrl: Type.Optional(Type.String({ pattern: '^https?://' })),
        /** Extra names for the server's TLS certificate (localhost and loopback are always in). */
        tlsDnsNames: Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { default: [] }),
      },
      { additionalProperties: false, default: {} },
    ),
    gateway: Type.Object(
      {
        enabled: Type.Boolean({ default: true }),
        host: Type.String({ minLength: 1, default: '127.0.0.1' }),
        /** MQTT over TLS (IANA 8883); plain TCP is never offered. */
        port: Type.Integer({ minimum: 0, maximum: 65535, default: 8883 }),
        maxPayloadBytes: Type.Integer({ minimum: 256, maximum: 1_048_576, default: 65_536 }),
        /** Most messages one group commit writes. */
        ingestBatch: Type.Integer({ minimum: 1, maximum: 10_000, default: 4096 }),
        /**
         * How long a message waits for others before its commit starts. On SQLite a commit's fsync
         * holds the event loop, so this bounds commits per second; it is also the added QoS 1 latency.
         */
        ingestLingerMs: Type.Integer({ minimum: 0, maximum: 100, default: 8 }),
        /** Sustained PUBLISH rate per device across its reconnects (burst: one second's worth); beyond it DISCONNECT 0x96. */
        maxPublishesPerSecond: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1000 }),
        /** Refusals of one device (or source) with one code are audited as one row per this window, with a count. */
        refusalAuditWindowMs: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 10_000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    provisioning: Type.Object(
      {
        /** Per source address: a factory or a fleet behind one NAT provisions many devices. */
        perSourcePerMinute: Type.Integer({ minimum: 1, default: 600 }),
        perSourceBurst: Type.Integer({ minimum: 1, default: 200 }),
        /** Per device identity: a device retrying in a loop is slowed, others are not. */
        perDevicePerMinute: Type.Integer({ minimum: 1, default: 10 }),
        perDeviceBurst: Type.Integer({ minimum: 1, default: 5 }),
        /** Nonces outstanding (issued, unused, unexpired) at once: in total, and per source address. */
        maxOutstandingNonces: Type.Integer({ minimum: 1, default: 100_000 }),
        maxOutstandingNoncesPerSource: Type.Integer({ minimum: 1, default: 1_000 }),
        /** How often expired provisioning challenges (nonces, TPM challenges, used token ids) are deleted. */
        challengeSweepIntervalMs: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 60_000 }),
        /** How often the CRLs of outside enrollment anchors are checked for refresh (each is fetched before its nextUpdate). */
        crlRefreshIntervalMs: Type.Integer({ minimum: 100, maximum: 86_400_000, default: 300_000 }),
        /** One CRL fetch: time budget for the whole response, and its largest size. */
        crlFetchTimeoutMs: Type.Integer({ minimum: 100, maximum: 60_000, default: 5_000 }),
        crlMaxBytes: Type.Integer({ minimum: 1024, maximum: 16 * 1024 * 1024, default: 16 * 1024 * 1024 }),
      },
      { additionalProperties: false, default: {} },
    ),
    rollouts: Type.Object(
      {
        /** How often the rollout engine re-reads running rollouts from the store (timeouts, waves, pacing). */
        tickIntervalMs: Type.Integer({ minimum: 50, maximum: 60_000, default: 1000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Measured-boot attestation (issue 13). */
    attestation: Type.Object(
      {
        /** How often overdue devices are marked stale: a device is stale within its policy's maximum age plus this. */
        sweepIntervalMs: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 1_000 }),
        /** Lifetime of a quote nonce. */
        nonceTtlMs: Type.Integer({ minimum: 1_000, maximum: 600_000, default: 60_000 }),
        /** Outstanding quote nonces kept per device (older ones are dropped). */
        maxNoncesPerDevice: Type.Integer({ minimum: 1, maximum: 64, default: 4 }),
        /** Device-plane attestation requests (nonce and quote) per device. */
        perDevicePerMinute: Type.Integer({ minimum: 1, default: 120 }),
        perDeviceBurst: Type.Integer({ minimum: 1, default: 30 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /**
     * Cluster membership (issue 15). Without `url` the server is a single node exactly as before
     * (in-process bus, no NATS). With `url` (nats://host:port, JetStream enabled) and a PostgreSQL
     * `databaseUrl`, the node joins the cluster of every node sharing that database and bus.
     */
    cluster: Type.Object(
      {
        url: Type.Optional(Type.String({ pattern: '^nats://[^\\s]+$', maxLength: 512 })),
        /** This node's id (default: host-pid-random); unique in the cluster. */
        nodeId: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' })),
        /** How often a node writes its heartbeat. */
        heartbeatMs: Type.Integer({ minimum: 100, maximum: 60_000, default: 1_000 }),
        /** A node whose heartbeat is older than this is dead: its devices are marked offline. */
        nodeTimeoutMs: Type.Integer({ minimum: 300, maximum: 600_000, default: 5_000 }),
        /**
         * Store fallback: how often a node reads revocations and status changes committed by others
         * from the events table while the bus is down (and, at 5× this, while it is up, to catch a
         * message lost in flight). The bound on a cross-node revocation without NATS.
         */
        storePollMs: Type.Integer({ minimum: 50, maximum: 60_000, default: 500 }),
        /** JetStream stream that receives every stored diagnostics/telemetry message. */
        telemetryStream: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', default: 'FLEETKEY_DATA' }),
      },
      { additionalProperties: false, default: {} },
    ),
    logLevel: Type.Union(LOG_LEVELS.map((l) => Type.Literal(l)), { default: 'info' }),
    webhooks: Type.Object(
      {
        allowInsecureHttp: Type.Boolean({ default: false }),
        /**
         * CIDR ranges (e.g. "127.0.0.1/32", "10.20.0.0/16") webhooks, decision webhooks and CRL
         * fetches of enrollments may reach although they are loopback, private, link-local or
         * otherwise internal; refused by default (issue 11 item 11, issue 10).
         */
        allowPrivateDestinations: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { default: [], maxItems: 64 }),
        timeoutMs: Type.Integer({ minimum: 100, maximum: 60_000, default: 10_000 }),
        maxAttempts: Type.Integer({ minimum: 1, maximum: 50, default: 12 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Signed updates (docs/updates.md): online metadata lifetimes, re-signed at half of them. */
    updates: Type.Object(
      {
        maxArtifactBytes: Type.Integer({ minimum: 1024, maximum: 64 * 1024 ** 3, default: 4 * 1024 ** 3 }),
        timestampLifetime: Type.String({ pattern: DURATION_PATTERN, default: '24h' }),
        snapshotLifetime: Type.String({ pattern: DURATION_PATTERN, default: '7d' }),
        directorLifetime: Type.String({ pattern: DURATION_PATTERN, default: '24h' }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

export type FleetkeyConfig = Static<typeof ConfigSchema>;
