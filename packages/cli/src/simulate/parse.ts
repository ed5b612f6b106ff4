import { UsageError } from '../client.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `30s`, `2m`, `1h`, `500ms`, or a bare number of seconds → milliseconds. */
export function parseDuration(flag: string, v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  const ms = m === null ? NaN : Number(m[1]) * (UNITS[m[2] ?? 's'] ?? NaN);
  if (!Number.isFinite(ms) || ms <= 0) throw new UsageError(`${flag} must be a duration such as 30s, 2m or 500ms`);
  return Math.round(ms);
}

export function parseInteger(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be an integer ${min}..${max}`);
  return n;
}

export function parseRate(flag: string, v: string): number {
  const n = Number(v);
  // 0 is allowed: connect-only runs (a connection-count test without traffic).
  if (!Number.isFinite(n) || n < 0 || n > 1000) throw new UsageError(`${flag} must be a number 0..1000 (messages per device per second)`);
  return n;
}

export function parsePerMinute(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 600) throw new UsageError(`${flag} must be a number above 0, at most 600 (replacements per minute)`);
  return n;
}
