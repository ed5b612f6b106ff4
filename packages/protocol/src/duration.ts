const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `90s`, `15m`, `24h`, `30d` (one unit, whole numbers) to milliseconds; null if malformed. */
export function parseDuration(text: string): number | null {
  const m = /^([1-9][0-9]{0,6})([smhd])$/.exec(text.trim());
  if (m === null) return null;
  return Number(m[1]) * (UNITS[m[2] ?? ''] ?? 0);
}

export const DURATION_PATTERN = '^[1-9][0-9]{0,6}[smhd]$';
