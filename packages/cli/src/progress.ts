/**
 * Progress of a long job on stderr. On a terminal it is one line redrawn in place (carriage
 * return, erase line: ECMA-48 EL) at most 10 times a second, with a bar, the rate and an ETA;
 * otherwise (a pipe, a CI log) plain lines, one a second and at each whole percent of runs of 100
 * or more, so logs stay readable and greppable.
 */
export interface Progress {
  /** `done` of `total` (total 0: no bar or ETA, only the text). */
  update(done: number, extra?: string): void;
  /** Ends the line (terminal) or prints the last line (plain). */
  finish(extra?: string): void;
}

export interface ProgressOptions {
  readonly label: string;
  readonly total: number;
  /** What is counted, for the rate: "devices". */
  readonly unit: string;
  readonly stream?: NodeJS.WriteStream;
  /** Runs shorter than this print nothing until they finish (a terminal still shows the bar). */
  readonly quietBelow?: number;
}

const WIDTH = 24;

export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const mm = String(m).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export function progressLine(label: string, done: number, total: number, unit: string, elapsedMs: number, extra?: string): { bar: string; plain: string } {
  const rate = done / Math.max(elapsedMs / 1000, 1e-3);
  const tail = extra === undefined || extra === '' ? '' : `, ${extra}`;
  if (total <= 0) {
    const plain = `${label} ${done} ${unit}, ${rate.toFixed(1)} ${unit}/s${tail}`;
    return { bar: plain, plain };
  }
  const frac = Math.min(1, done / total);
  const pct = Math.floor(frac * 100);
  const filled = Math.round(frac * WIDTH);
  const eta = done === 0 ? Number.NaN : (total - done) / rate;
  const bar = `${label} [${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ${pct}% ${done}/${total}, ${rate.toFixed(1)} ${unit}/s, ETA ${formatEta(eta)}${tail}`;
  const plain = `${label} ${done}/${total} (${pct}%), ${rate.toFixed(1)} ${unit}/s, ETA ${formatEta(eta)}${tail}`;
  return { bar, plain };
}

export function createProgress(o: ProgressOptions): Progress {
  const stream = o.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  const started = Date.now();
  let lastAt = 0;
  let lastPct = -1;
  let drawn = false;
  let last = { done: 0, extra: undefined as string | undefined };
  const draw = (final: boolean): void => {
    const now = Date.now();
    const { bar, plain } = progressLine(`fleetkey: ${o.label}`, last.done, o.total, o.unit, now - started, last.extra);
    if (tty) {
      if (!final && now - lastAt < 100) return;
      lastAt = now;
      stream.write(`\r\x1b[2K${bar.slice(0, Math.max(20, (stream.columns ?? 120) - 1))}${final ? '\n' : ''}`);
      drawn = true;
      return;
    }
    if (!final && o.total < (o.quietBelow ?? 0)) return;
    const pct = o.total > 0 ? Math.floor((last.done * 100) / o.total) : -1;
    const newPercent = o.total >= 100 && pct !== lastPct;
    if (!final && now - lastAt < 1000 && !newPercent) return;
    lastAt = now;
    lastPct = pct;
    stream.write(`${plain}\n`);
  };
  return {
    update(done, extra) {
      last = { done, extra };
      draw(false);
    },
    finish(extra) {
      if (extra !== undefined) last = { ...last, extra };
      if (tty && !drawn && last.done === 0) return;
      draw(true);
    },
  };
}

/**
 * A status line for jobs whose phases change (the simulator): redrawn in place on a terminal,
 * a new line each call otherwise; a phase change keeps the previous phase's last line.
 */
export function statusLine(stream: NodeJS.WriteStream = process.stderr): { show(phase: string, text: string): void; end(): void } {
  const tty = stream.isTTY === true;
  let phase: string | undefined;
  let open = false;
  return {
    show(p, text) {
      if (!tty) {
        stream.write(`${text}\n`);
        return;
      }
      if (open && p !== phase) stream.write('\n');
      phase = p;
      open = true;
      stream.write(`\r\x1b[2K${text.slice(0, Math.max(20, (stream.columns ?? 120) - 1))}`);
    },
    end() {
      if (open) stream.write('\n');
      open = false;
    },
  };
}
