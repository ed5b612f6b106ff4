import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FleetkeyError } from '@fleetkey/protocol';
import { Kind, type TSchema } from '@sinclair/typebox';
import { Value, ValueErrorType } from '@sinclair/typebox/value';
import { allSettings, expected } from './config-reference.js';
import { ConfigSchema, type FleetkeyConfig } from './config-schema.js';
import { assertPrivateFile } from './secret-files.js';

export const CONFIG_FILE = 'fleetkey.json';

/** `fleetkey serve` flags, by the setting they set (the schema's `flag` annotations). */
export interface ConfigOverrides {
  dataDir: string;
  host: string;
  port: number;
  databaseUrl: string;
  devicePort: number;
  mqttPort: number;
  clusterUrl: string;
}

export interface ConfigSources {
  /** Explicit config file; otherwise `<dataDir>/fleetkey.json` when present. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Values from command-line flags: highest precedence. */
  overrides?: Partial<ConfigOverrides>;
}

const OVERRIDE_PATHS: Readonly<Record<Exclude<keyof ConfigOverrides, 'dataDir'>, { path: string; flag: string }>> = {
  host: { path: 'http.host', flag: '--host' },
  port: { path: 'http.port', flag: '--port' },
  databaseUrl: { path: 'databaseUrl', flag: '--database-url' },
  devicePort: { path: 'deviceHttp.port', flag: '--device-port' },
  mqttPort: { path: 'gateway.port', flag: '--mqtt-port' },
  clusterUrl: { path: 'cluster.url', flag: '--cluster' },
};

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let o = target;
  for (const k of keys.slice(0, -1)) {
    const next = o[k];
    o[k] = typeof next === 'object' && next !== null && !Array.isArray(next) ? { ...(next as object) } : {};
    o = o[k] as Record<string, unknown>;
  }
  o[keys[keys.length - 1]!] = value;
}

function hasPath(source: unknown, path: string): boolean {
  let o = source;
  for (const k of path.split('.')) {
    if (typeof o !== 'object' || o === null || !Object.hasOwn(o, k)) return false;
    o = (o as Record<string, unknown>)[k];
  }
  return true;
}

/** An environment string as the setting's type; a value of the wrong form is left for validation to name. */
function fromEnv(schema: TSchema, v: string): unknown {
  const kind = schema[Kind] as string;
  if (kind === 'Integer' || kind === 'Number') return v.trim() === '' ? v : Number(v);
  if (kind === 'Boolean') return v === 'true' ? true : v === 'false' ? false : v;
  return v;
}

/**
 * Builds the config from defaults ← file ← environment ← flags and validates it once. An
 * unknown key, a wrong type or a config file others can read stops the server at start rather
 * than half-working later; the refusal names each setting, where its value came from and what it
 * must be.
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
      throw new FleetkeyError('CONFIG_INVALID', { detail: `${file}: ${(e as Error).message}; fix: write the file as one JSON object (settings: docs/config.md)` });
    }
    if (typeof fromFile !== 'object' || fromFile === null || Array.isArray(fromFile)) {
      throw new FleetkeyError('CONFIG_INVALID', { detail: `${file}: not a JSON object; fix: write the file as one JSON object such as {"http": {"port": 8400}}` });
    }
  }

  // Where each value set outside the file came from, for the refusal message.
  const origin = new Map<string, string>();
  const raw: Record<string, unknown> = { ...fromFile, dataDir };
  for (const s of allSettings()) {
    if (s.env === undefined || s.path === 'dataDir') continue;
    const v = env[s.env];
    // An empty DATABASE_URL or FLEETKEY_CLUSTER (a shell's `X=`) means "not set", as it always has.
    if (v === undefined || (v === '' && (s.path === 'databaseUrl' || s.path === 'cluster.url'))) continue;
    setPath(raw, s.path, fromEnv(s.schema, v));
    origin.set(s.path, `environment variable ${s.env}`);
  }
  for (const [key, target] of Object.entries(OVERRIDE_PATHS)) {
    const v = sources.overrides?.[key as keyof typeof OVERRIDE_PATHS];
    if (v === undefined || ((key === 'databaseUrl' || key === 'clusterUrl') && v === '')) continue;
    setPath(raw, target.path, v);
    origin.set(target.path, `flag ${target.flag}`);
  }

  const withDefaults = Value.Default(ConfigSchema, raw);
  if (!Value.Check(ConfigSchema, withDefaults)) {
    const first = [...Value.Errors(ConfigSchema, withDefaults)].slice(0, 5);
    // Setting, source and what it expects; never the value itself (it may be a database password).
    const detail = first
      .map((e) => {
        const path = e.path.split('/').filter((p) => p !== '').join('.') || '(top level)';
        const where = origin.get(path) ?? (file !== undefined && hasPath(fromFile, path) ? file : 'the defaults');
        if (e.type === ValueErrorType.ObjectAdditionalProperties) {
          return `${path} (in ${where}): unknown setting; fix: remove it or correct its name (every setting: docs/config.md)`;
        }
        return `${path} (in ${where}): ${e.message}; fix: use a value of the form: ${expected(e.schema)}`;
      })
      .join('\n  ');
    throw new FleetkeyError('CONFIG_INVALID', { detail });
  }
  return withDefaults;
}
