import { describe, expect, test } from 'vitest';
import { checkWaves, decide, healthVerdict, parseHealthRule, parseSelector, selects, waveSizes, type RolloutState } from '../../src/modules/rollouts/rules.js';

const base = (over: Partial<RolloutState> = {}): RolloutState => ({
  status: 'running',
  currentWave: 0,
  waveSizes: [40, 160],
  waves: [
    { pending: 0, assigned: 0, installed: 0, failures: 0 },
    { pending: 160, assigned: 0, installed: 0, failures: 0 },
  ],
  minExecuted: 20,
  abortFailureBp: 1000,
  successBp: 9000,
  maxPerMinute: 1000,
  assignedLastMinute: 0,
  ...over,
});

describe('rollout rules', () => {
  test('fail: malformed selectors, waves and health rules are refused', () => {
    for (const s of ['', 'name:', 'name:A*', 'name:a/b', 'tag:', 'tag:site', 'tag:Site=x', 'tag:site=a b', 'device:x', 'name:a*;drop']) expect(parseSelector(s)).toBeNull();
    for (const w of [[], [50], [0, 100], [50, 50, 100], [60, 40, 100], [100, 100], [101], [Number.NaN, 100]]) expect(checkWaves(w)).not.toBeNull();
    for (const r of ['', 'temperature < 80', 'diagnostics < 80', 'diagnostics.t < x', 'diagnostics.t =< 80', 'diagnostics.t < 80; x', 'diagnostics.__proto__ <', 'diagnostics.a.b.c.d.e.f.g.h.i < 1']) {
      expect(parseHealthRule(r)).toBeNull();
    }
  });

  test('fail: the abort rule trips on the failure ratio once min-executed have executed, not before', () => {
    // 3 failures of 19 executed: under min-executed, no abort.
    expect(decide(base({ waves: [{ pending: 0, assigned: 21, installed: 16, failures: 3 }, { pending: 160, assigned: 0, installed: 0, failures: 0 }] })).kind).toBe('wait');
    // 3 of 20 = 0.15 > 0.1: abort.
    const d = decide(base({ waves: [{ pending: 0, assigned: 20, installed: 17, failures: 3 }, { pending: 160, assigned: 0, installed: 0, failures: 0 }] }));
    expect(d.kind).toBe('abort');
    // Exactly the ratio (2 of 20) does not abort: "above" the ratio.
    expect(decide(base({ waves: [{ pending: 0, assigned: 20, installed: 18, failures: 2 }, { pending: 160, assigned: 0, installed: 0, failures: 0 }] })).kind).toBe('wait');
    // A paused rollout is still watched.
    expect(decide(base({ status: 'paused', waves: [{ pending: 0, assigned: 20, installed: 17, failures: 3 }, { pending: 160, assigned: 0, installed: 0, failures: 0 }] })).kind).toBe('abort');
  });

  test('fail: a wave that finished below its success ratio stops the rollout', () => {
    const d = decide(base({ minExecuted: 1000, waves: [{ pending: 0, assigned: 0, installed: 35, failures: 5 }, { pending: 160, assigned: 0, installed: 0, failures: 0 }] }));
    expect(d).toMatchObject({ kind: 'abort' });
  });

  test('waves advance by themselves at the success ratio; pacing; completion', () => {
    expect(decide(base({ waves: [{ pending: 40, assigned: 0, installed: 0, failures: 0 }, { pending: 160, assigned: 0, installed: 0, failures: 0 }] }))).toEqual({ kind: 'assign', wave: 0, count: 40 });
    expect(decide(base({ maxPerMinute: 10, assignedLastMinute: 4, waves: [{ pending: 40, assigned: 4, installed: 0, failures: 0 }, { pending: 160, assigned: 0, installed: 0, failures: 0 }] }))).toEqual({
      kind: 'assign',
      wave: 0,
      count: 6,
    });
    expect(decide(base({ maxPerMinute: 10, assignedLastMinute: 10, waves: [{ pending: 30, assigned: 10, installed: 0, failures: 0 }, { pending: 160, assigned: 0, installed: 0, failures: 0 }] })).kind).toBe('wait');
    // 36 of 40 installed (0.9), 4 still outstanding: the next wave starts (hawkBit success condition).
    expect(decide(base({ waves: [{ pending: 0, assigned: 4, installed: 36, failures: 0 }, { pending: 160, assigned: 0, installed: 0, failures: 0 }] }))).toEqual({ kind: 'start_wave', wave: 1 });
    expect(decide(base({ status: 'paused', waves: [{ pending: 0, assigned: 4, installed: 36, failures: 0 }, { pending: 160, assigned: 0, installed: 0, failures: 0 }] })).kind).toBe('wait');
    const last = base({ currentWave: 1, waves: [{ pending: 0, assigned: 0, installed: 40, failures: 0 }, { pending: 0, assigned: 1, installed: 159, failures: 0 }] });
    expect(decide(last).kind).toBe('wait');
    expect(decide({ ...last, waves: [{ pending: 0, assigned: 0, installed: 40, failures: 0 }, { pending: 0, assigned: 0, installed: 160, failures: 0 }] }).kind).toBe('complete');
    // A straggler of an earlier wave keeps the rollout open until its outcome (or its timeout).
    expect(decide({ ...last, waves: [{ pending: 0, assigned: 1, installed: 39, failures: 0 }, { pending: 0, assigned: 0, installed: 160, failures: 0 }] }).kind).toBe('wait');
  });

  test('wave sizes, selectors and health verdicts', () => {
    expect(waveSizes(200, [1, 10, 50, 100])).toEqual([2, 18, 80, 100]);
    expect(waveSizes(3, [1, 10, 50, 100])).toEqual([1, 0, 1, 1]);
    expect(waveSizes(7, [100])).toEqual([7]);
    const n = parseSelector('name:line-03-*')!;
    expect(selects(n, 'line-03-left-12', {})).toBe(true);
    expect(selects(n, 'line-030', {})).toBe(false);
    expect(selects(parseSelector('name:a.b?')!, 'axbc', {})).toBe(false);
    const t = parseSelector('tag:site=plant-1')!;
    expect(selects(t, 'x', { site: 'plant-1' })).toBe(true);
    expect(selects(t, 'x', { site: 'plant-10' })).toBe(false);
    const rule = parseHealthRule('diagnostics.motor.temp <= 80')!;
    expect(healthVerdict(rule, { motor: { temp: 70 } })).toBe(true);
    expect(healthVerdict(rule, { motor: { temp: 81 } })).toBe(false);
    expect(healthVerdict(rule, { motor: { temp: '90' } })).toBeNull();
    expect(healthVerdict(rule, { motor: {} })).toBeNull();
    expect(healthVerdict(rule, null)).toBeNull();
  });
});
