import { Kind, type TSchema } from '@sinclair/typebox';
import { ConfigSchema } from './config-schema.js';

/** One setting of the config schema: a leaf (anything but a plain object of settings). */
export interface Setting {
  /** Dotted path as written in fleetkey.json (`http.port`). */
  readonly path: string;
  readonly schema: TSchema;
  readonly description: string | undefined;
  readonly env: string | undefined;
  readonly flag: string | undefined;
}

export interface Section {
  readonly path: string;
  readonly description: string | undefined;
  readonly settings: Setting[];
}

const isSection = (s: TSchema): boolean => s[Kind] === 'Object' && s['properties'] !== undefined && Object.keys(s['properties'] as object).length > 0 && s['additionalProperties'] === false && s['default'] !== undefined;

/** The settings of the schema, grouped by section (top-level settings first, as "general"). */
export function configSections(schema: TSchema = ConfigSchema): Section[] {
  const sections: Section[] = [{ path: '', description: 'Top-level settings.', settings: [] }];
  const walk = (s: TSchema, prefix: string, into: Section): void => {
    for (const [key, child] of Object.entries(s['properties'] as Record<string, TSchema>)) {
      const path = prefix === '' ? key : `${prefix}.${key}`;
      if (isSection(child)) {
        const sub: Section = { path, description: child['description'] as string | undefined, settings: [] };
        sections.push(sub);
        walk(child, path, sub);
      } else {
        into.settings.push({ path, schema: child, description: child['description'] as string | undefined, env: child['env'] as string | undefined, flag: child['flag'] as string | undefined });
      }
    }
  };
  walk(schema, '', sections[0]!);
  return sections.filter((s) => s.settings.length > 0);
}

export function allSettings(schema: TSchema = ConfigSchema): Setting[] {
  return configSections(schema).flatMap((s) => s.settings);
}

/** What a value must be, in words: type, bounds, pattern, choices. */
export function expected(s: TSchema): string {
  const kind = s[Kind] as string;
  if (kind === 'Integer' || kind === 'Number') {
    const lo = s['minimum'] as number | undefined;
    const hi = s['maximum'] as number | undefined;
    const noun = kind === 'Integer' ? 'integer' : 'number';
    if (lo !== undefined && hi !== undefined) return `${noun} ${lo}–${hi}`;
    if (lo !== undefined) return `${noun} ≥ ${lo}`;
    return noun;
  }
  if (kind === 'Boolean') return 'true or false';
  if (kind === 'String') {
    if (s['pattern'] === '^[1-9][0-9]{0,6}[smhd]$') return 'duration (`30s`, `15m`, `1h`, `30d`)';
    if (typeof s['pattern'] === 'string') return `string matching \`${s['pattern'] as string}\``;
    return 'string';
  }
  if (kind === 'Array') return `list of ${expected(s['items'] as TSchema)}s${s['maxItems'] === undefined ? '' : ` (at most ${s['maxItems'] as number})`}`;
  if (kind === 'Union') {
    const options = s['anyOf'] as TSchema[];
    if (options.every((o) => o[Kind] === 'Literal')) return `one of ${options.map((o) => `\`${String(o['const'])}\``).join(', ')}`;
    return 'object (see description)';
  }
  return kind.toLowerCase();
}

const defaultOf = (s: TSchema): string => (s['default'] === undefined ? '—' : `\`${JSON.stringify(s['default'])}\``);
const cell = (t: string): string => t.replaceAll('|', '\\|').replaceAll('\n', ' ');

/** Environment variables read outside the config schema (not settings of fleetkey.json). */
export const OTHER_ENV: readonly { name: string; description: string }[] = [
  { name: 'FLEETKEY_MASTER_KEY', description: 'The master key (base64, 32 bytes) instead of `<dataDir>/master.key`, for deployments whose secret store injects it.' },
  { name: 'FLEETKEY_URL', description: 'CLI: the server URL (`--url`); default: the local server noted in `<dataDir>/server.json`.' },
  { name: 'FLEETKEY_TOKEN', description: 'CLI: the API token (`--token`); default: `<dataDir>/admin.token`.' },
];

/** docs/config.md: every setting with its file key, environment variable, flag, type, default and meaning. */
export function renderConfigReference(): string {
  const out = [
    '# Configuration reference',
    '',
    'Every setting of the Fleetkey server. Sources, each overriding the one before: the defaults below,',
    'the config file (`fleetkey serve --config FILE`, else `<dataDir>/fleetkey.json` when present; it must',
    'be mode 0600 and owned by the user running the server), the environment variables, then the',
    '`fleetkey serve` flags. The whole config is validated at start: an unknown key, a wrong type or a',
    'value out of bounds stops the server with the setting, where it came from and what it expects.',
    '',
    'This file is generated from `packages/server/src/config/config-schema.ts`; a test fails when the two',
    'differ. Regenerate with `UPDATE_DOCS=1 npx vitest run packages/server/test/config/config-doc.test.ts`.',
    '',
    'An example `fleetkey.json`:',
    '',
    '```json',
    '{ "http": { "host": "0.0.0.0", "port": 8400 }, "gateway": { "maxPayloadBytes": 16384 }, "metrics": { "allowNetworks": ["10.20.0.0/16"] } }',
    '```',
    '',
  ];
  for (const section of configSections()) {
    out.push(`## ${section.path === '' ? 'General' : `\`${section.path}\``}`, '');
    if (section.description !== undefined) out.push(section.description, '');
    out.push('| setting | environment | flag | value | default | meaning |', '| --- | --- | --- | --- | --- | --- |');
    for (const s of section.settings) {
      out.push(`| \`${s.path}\` | ${s.env === undefined ? '' : `\`${s.env}\``} | ${s.flag === undefined ? '' : `\`${s.flag}\``} | ${cell(expected(s.schema))} | ${cell(defaultOf(s.schema))} | ${cell(s.description ?? '')} |`);
    }
    out.push('');
  }
  out.push('## Other environment variables', '', '| variable | meaning |', '| --- | --- |');
  for (const e of OTHER_ENV) out.push(`| \`${e.name}\` | ${cell(e.description)} |`);
  out.push('', 'Also `fleetkey serve --config FILE` (the config file) and, for the CLI, `--url`, `--token`, `--data-dir`, `--json`.', '');
  return out.join('\n');
}
