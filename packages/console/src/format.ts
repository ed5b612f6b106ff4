export const shortId = (id: string) => id.slice(0, 8);
export const when = (iso: string | null) => (iso === null ? '—' : new Date(iso).toLocaleString('en-GB', { timeZone: 'UTC', dateStyle: 'medium', timeStyle: 'medium' }) + ' UTC');

/** The first numeric field of a message payload: what a plot of "this device's data" shows. */
export function firstNumber(payload: unknown): { key: string; value: number } | null {
  if (typeof payload === 'number' && Number.isFinite(payload)) return { key: 'value', value: payload };
  if (payload === null || typeof payload !== 'object') return null;
  for (const [k, v] of Object.entries(payload)) if (typeof v === 'number' && Number.isFinite(v)) return { key: k, value: v };
  return null;
}

export const PALETTE = ['#1f5fbf', '#b3261e', '#1b7f3b', '#8a4b00', '#6b2fa3', '#00706e'];
