import { firstNumber, PALETTE, shortId } from '../format.js';
import type { Series } from './chart.js';

export interface Point {
  readonly deviceId: string;
  readonly receivedAt: string;
  readonly payload: unknown;
}

/**
 * Points to uPlot columns with one series per device: across a replacement, the old robot's line
 * stops and the new one's starts on the same plot of the name.
 */
export function bySeriesOfDevice(points: readonly Point[]): { series: Series[]; data: (number | null)[][]; field: string | null } {
  const sorted = [...points].sort((a, b) => Date.parse(a.receivedAt) - Date.parse(b.receivedAt));
  const devices = [...new Set(sorted.map((p) => p.deviceId))];
  const xs: number[] = [];
  const cols: (number | null)[][] = devices.map(() => []);
  let field: string | null = null;
  for (const p of sorted) {
    const n = firstNumber(p.payload);
    if (n === null) continue;
    field ??= n.key;
    xs.push(Date.parse(p.receivedAt) / 1000);
    devices.forEach((d, i) => cols[i]!.push(d === p.deviceId ? n.value : null));
  }
  return { series: devices.map((d, i) => ({ label: `device ${shortId(d)}`, color: PALETTE[i % PALETTE.length]! })), data: [xs, ...cols], field };
}
