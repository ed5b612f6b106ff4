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
      },
      { additionalProperties: false, default: {} },
    ),
    logLevel: Type.Union(LOG_LEVELS.map((l) => Type.Literal(l)), { default: 'info' }),
    webhooks: Type.Object(
      {
        allowInsecureHttp: Type.Boolean({ default: false }),
        timeoutMs: Type.Integer({ minimum: 100, maximum: 60_000, default: 10_000 }),
        maxAttempts: Type.Integer({ minimum: 1, maximum: 50, default: 12 }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false },
);

export type FleetkeyConfig = Static<typeof ConfigSchema>;
