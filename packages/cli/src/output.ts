import type { GlobalOptions } from './client.js';

/** Prints `data` as JSON when --json is set, otherwise as the human form `human` renders. */
export function emit(o: GlobalOptions, data: unknown, human: () => string): void {
  process.stdout.write(o.json === true ? `${JSON.stringify(data, null, 2)}\n` : `${human()}\n`);
}

/** Aligned two-column "key: value" lines. */
export function fields(rows: [string, unknown][]): string {
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v === null || v === undefined || v === '' ? '-' : String(v)}`).join('\n');
}

/** A plain table with a header row. */
export function table(header: string[], rows: unknown[][]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c))))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (c ?? '').padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}

/** Repeated `--tag k=v` / `--serial k=v` options collected into an object. */
export function collectPairs(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const i = value.indexOf('=');
  if (i <= 0) throw new Error(`expected key=value, got "${value}"`);
  return { ...previous, [value.slice(0, i)]: value.slice(i + 1) };
}
