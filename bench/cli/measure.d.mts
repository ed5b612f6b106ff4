export const BIN: string;
export function median(xs: readonly number[]): number;
export interface Measured {
  samples: number[];
  median: number;
  min: number;
  /** Median CPU time (user + system) of the process. */
  cpuMedian: number;
}
export function measure(commands: readonly { label: string; args: string[] }[], options?: { runs?: number; env?: NodeJS.ProcessEnv }): Promise<Record<string, Measured>>;
