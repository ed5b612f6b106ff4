import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FleetkeyError } from '@fleetkey/protocol';
import { Value } from '@sinclair/typebox/value';
import { ConfigSchema, type FleetkeyConfig } from './config-schema.js';
import { assertPrivateFile } from './secret-files.js';

export const CONFIG_FILE = 'fleetkey.json';

export interface ConfigSources {
  /** Explicit config file; otherwise `<dataDir>/fleetkey.json` when present. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Values from command-line flags: highest precedence. */
  overrides?: Partial<{ dataDir: string; host: string; port: number; databaseUrl: string; clusterUrl: string }>;
}

/**
 * Builds the config from defaults ← file ← environment ← flags and validates it once. An
 * unknown key, a wrong type or a config file others can read stops the server at start rather
 * than half-working later.
 */
export function loadConfig(sources: ConfigSources = {}): FleetkeyConfig {
  const env = sources.env ?? process.env;
  const dataDir = resolve(sources.overrides?.dataDir ?? env['FLEETKEY_DATA_DIR'] ?? 'fleetkey-data');
  const file = sources.file ?? (existsSync(join(dataDir, CONFIG_FILE)) ? join(dataDir, CONFIG_FILE) : undefined);

  let fromFile: Record<string, unknown> = {};
  if (file !== undefined) {
    // Any config file, whether or not it holds a secret today: a database URL with a password
    // added later must not land in a file others can already read.
    assertPrivateFile(file);
    try {
      fromFile = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new FleetkeyError('CONFIG_INVALID', { detail: `${file}: ${(e as Error).message}` });
    }
  }

  const raw: Record<string, unknown> = { ...fromFile, dataDir };
  const http = { ...((fromFile['http'] as object | undefined) ?? {}) } as Record<string, unknown>;
  if (env['FLEETKEY_HOST'] !== undefined) http['host'] = env['FLEETKEY_HOST'];
  if (env['FLEETKEY_PORT'] !== undefined) http['port'] = Number(env['FLEETKEY_PORT']);
  if (sources.overrides?.host !== undefined) http['host'] = sources.overrides.host;
  if (sources.overrides?.port !== undefined) http['port'] = sources.overrides.port;
  raw['http'] = http;
  const databaseUrl = sources.overrides?.databaseUrl ?? env['DATABASE_URL'];
  if (databaseUrl !== undefined && databaseUrl !== '') raw['databaseUrl'] = databaseUrl;
  if (env['FLEETKEY_LOG_LEVEL'] !== undefined) raw['logLevel'] = env['FLEETKEY_LOG_LEVEL'];
  const clusterUrl = sources.overrides?.clusterUrl ?? env['FLEETKEY_CLUSTER'];
  if (clusterUrl !== undefined && clusterUrl !== '') raw['cluster'] = { ...((fromFile['cluster'] as object | undefined) ?? {}), url: clusterUrl };

  const withDefaults = Value.Default(ConfigSchema, raw);
  if (!Value.Check(ConfigSchema, withDefaults)) {
    const first = [...Value.Errors(ConfigSchema, withDefaults)].slice(0, 5);
    // Paths and messages only: a config value may be a secret (a database password).
    const detail = first.map((e) => `${e.path || '/'}: ${e.message}`).join('; ');
    throw new FleetkeyError('CONFIG_INVALID', { detail });
  }
  return withDefaults;
}
