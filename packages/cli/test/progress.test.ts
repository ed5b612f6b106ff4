/** Issue 14: progress of long jobs redraws in place with an ETA on a terminal, plain lines otherwise. */
import { Writable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { createProgress, formatEta, progressLine } from '../src/progress.js';

function sink(tty: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  let out = '';
  const w = new Writable({
    write(chunk: Buffer, _e, done) {
      out += chunk.toString();
      done();
    },
  }) as unknown as NodeJS.WriteStream;
  Object.assign(w, { isTTY: tty, columns: 200 });
  return { stream: w, text: () => out };
}

describe('progress', () => {
  test('the line has a bar, the count, the rate and an ETA from the rate so far', () => {
    const { bar, plain } = progressLine('fleetkey: manufactured', 250, 1000, 'devices', 10_000);
    expect(bar).toBe('fleetkey: manufactured [######------------------] 25% 250/1000, 25.0 devices/s, ETA 00:30');
    expect(plain).toBe('fleetkey: manufactured 250/1000 (25%), 25.0 devices/s, ETA 00:30');
    expect(formatEta(3725)).toBe('1:02:05');
    expect(formatEta(Number.NaN)).toBe('--:--');
  });

  test('on a terminal the line is redrawn in place (CR + erase line) and ended once', () => {
    const s = sink(true);
    const p = createProgress({ label: 'manufactured', total: 10, unit: 'devices', stream: s.stream });
    for (let i = 1; i <= 10; i++) p.update(i);
    p.finish();
    const out = s.text();
    expect(out.startsWith('\r\x1b[2K')).toBe(true);
    expect(out.split('\n')).toHaveLength(2); // one line, ended by finish()
    expect(out).toContain('100% 10/10');
  });

  test('fail: piped output never carries escape sequences or carriage returns', () => {
    const s = sink(false);
    const p = createProgress({ label: 'manufactured', total: 200, unit: 'devices', stream: s.stream });
    for (let i = 1; i <= 200; i++) p.update(i);
    p.finish();
    const out = s.text();
    expect(out).not.toMatch(/[\r\x1b]/);
    // One line per whole percent at most, plus the final one.
    expect(out.trim().split('\n').length).toBeLessThanOrEqual(102);
    expect(out).toContain('fleetkey: manufactured 200/200 (100%)');
  });
});
