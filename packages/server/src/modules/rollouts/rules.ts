/**
 * The rollout engine's pure decisions: no store, no clock. Modelled on AWS IoT Jobs (abort
 * criteria: failure types FAILED / TIMED_OUT, thresholdPercentage, minNumberOfExecutedThings;
 * rollout rate) and Eclipse hawkBit rollout groups (cascading start of the next group when a
 * group's success condition is reached; emergency shutdown on the error condition).
 */

export const BP = 10_000;

/** Names per wave from cumulative percentages: wave k ends at ceil(total × pct_k / 100). */
export function waveSizes(total: number, waves: readonly number[]): number[] {
  const sizes: number[] = [];
  let done = 0;
  for (const pct of waves) {
    const end = Math.min(total, Math.ceil((total * pct) / 100 - 1e-9));
    sizes.push(Math.max(0, end - done));
    done = Math.max(done, end);
  }
  return sizes;
}

/** Strictly increasing percentages in (0, 100], the last one 100; null when valid, else why. */
export function checkWaves(waves: readonly number[]): string | null {
  if (waves.length === 0) return 'no wave';
  for (const [i, w] of waves.entries()) {
    if (!Number.isFinite(w) || w <= 0 || w > 100) return `wave ${i + 1} is ${w}%`;
    if (i > 0 && w <= (waves[i - 1] as number)) return `wave ${i + 1} (${w}%) does not grow`;
  }
  if (waves[waves.length - 1] !== 100) return 'the last wave must be 100%';
  return null;
}

export type Selector = { readonly kind: 'name'; readonly glob: string; readonly re: RegExp } | { readonly kind: 'tag'; readonly key: string; readonly value: string };

const GLOB = /^[a-z0-9*?][a-z0-9._*?-]{0,127}$/;
const TAG = /^([a-z][a-z0-9_.-]{0,63})=([A-Za-z0-9_.:/@+-]{0,128})$/;

/** `name:<glob>` (`*` any run, `?` one character, over the name grammar) or `tag:<key>=<value>`. */
export function parseSelector(text: string): Selector | null {
  if (text.startsWith('name:')) {
    const glob = text.slice(5);
    if (!GLOB.test(glob)) return null;
    // Only [a-z0-9._-] reach the pattern besides * and ?; '.' is the one regex metacharacter among them.
    const re = new RegExp(`^${glob.replace(/\./g, '\\.').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
    return { kind: 'name', glob, re };
  }
  if (text.startsWith('tag:')) {
    const m = TAG.exec(text.slice(4));
    if (m === null) return null;
    return { kind: 'tag', key: m[1] as string, value: m[2] as string };
  }
  return null;
}

export function selects(sel: Selector, name: string, tags: Readonly<Record<string, unknown>>): boolean {
  return sel.kind === 'name' ? sel.re.test(name) : Object.hasOwn(tags, sel.key) && tags[sel.key] === sel.value;
}

export type HealthOp = '<' | '<=' | '>' | '>=' | '==' | '!=';
export interface HealthRule {
  readonly path: readonly string[];
  readonly op: HealthOp;
  readonly limit: number;
}

const RULE = /^diagnostics((?:\.[A-Za-z_][A-Za-z0-9_]{0,63}){1,8})\s*(<=|>=|==|!=|<|>)\s*(-?\d{1,15}(?:\.\d{1,15})?)$/;

/** `diagnostics.<field>[.<field>…] <op> <number>`: what a healthy device's diagnostics satisfy. */
export function parseHealthRule(text: string): HealthRule | null {
  const m = RULE.exec(text.trim());
  if (m === null) return null;
  const limit = Number(m[3]);
  if (!Number.isFinite(limit)) return null;
  return { path: (m[1] as string).slice(1).split('.'), op: m[2] as HealthOp, limit };
}

/**
 * true: the payload satisfies the rule; false: it breaks it; null: it says nothing (the field is
 * absent or not a finite number). A device is judged only on evidence, never on silence: silence
 * is what the timeout is for.
 */
export function healthVerdict(rule: HealthRule, payload: unknown): boolean | null {
  let v: unknown = payload;
  for (const k of rule.path) {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.hasOwn(v, k)) return null;
    v = (v as Record<string, unknown>)[k];
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) return null;
  switch (rule.op) {
    case '<':
      return v < rule.limit;
    case '<=':
      return v <= rule.limit;
    case '>':
      return v > rule.limit;
    case '>=':
      return v >= rule.limit;
    case '==':
      return v === rule.limit;
    case '!=':
      return v !== rule.limit;
  }
}

export interface WaveCounts {
  pending: number;
  assigned: number;
  installed: number;
  /** failed + timed_out + unhealthy */
  failures: number;
}

export interface RolloutState {
  readonly status: string;
  readonly currentWave: number;
  readonly waveSizes: readonly number[];
  /** Per wave, index-aligned with waveSizes. */
  readonly waves: readonly WaveCounts[];
  readonly minExecuted: number;
  readonly abortFailureBp: number;
  readonly successBp: number;
  readonly maxPerMinute: number;
  /** Names assigned in the last 60 s (the rate window). */
  readonly assignedLastMinute: number;
}

export type Decision =
  | { readonly kind: 'abort'; readonly reason: string; readonly executed: number; readonly failures: number }
  | { readonly kind: 'complete' }
  | { readonly kind: 'start_wave'; readonly wave: number }
  | { readonly kind: 'assign'; readonly wave: number; readonly count: number }
  | { readonly kind: 'wait' };

/**
 * One step of a running rollout, in a fixed order: the abort rule first (AWS IoT Jobs abort
 * criteria over the whole rollout: executed ≥ minExecuted and failures ÷ executed strictly above
 * the ratio), then the current wave's assignments (paced by maxPerMinute), then the hawkBit group
 * condition (the next wave starts once this one's successes reach successRatio of its size; a
 * wave that finished below it stops the rollout). A paused rollout is only watched: it may abort,
 * never assign or advance.
 */
export function decide(s: RolloutState): Decision {
  let executed = 0;
  let failures = 0;
  for (const w of s.waves) {
    executed += w.installed + w.failures;
    failures += w.failures;
  }
  if (executed >= s.minExecuted && failures * BP > s.abortFailureBp * executed) {
    return { kind: 'abort', reason: `failure ratio ${(failures / executed).toFixed(3)} (${failures} of ${executed} executed) above ${(s.abortFailureBp / BP).toFixed(3)}`, executed, failures };
  }
  if (s.status !== 'running') return { kind: 'wait' };
  const i = s.currentWave;
  const w = s.waves[i];
  const size = s.waveSizes[i];
  if (w === undefined || size === undefined) return { kind: 'wait' };
  if (w.pending > 0) {
    const room = s.maxPerMinute - s.assignedLastMinute;
    return room > 0 ? { kind: 'assign', wave: i, count: Math.min(room, w.pending) } : { kind: 'wait' };
  }
  const reached = w.installed * BP >= s.successBp * size;
  const last = i === s.waveSizes.length - 1;
  if (reached && !last) return { kind: 'start_wave', wave: i + 1 };
  if (w.assigned > 0) return { kind: 'wait' };
  // Completed means every name has its outcome: an earlier wave's straggler is still awaited
  // (it installs, fails, or times out).
  if (reached) return s.waves.some((x) => x.assigned > 0) ? { kind: 'wait' } : { kind: 'complete' };
  return {
    kind: 'abort',
    reason: `wave ${i + 1} finished with ${w.installed} of ${size} installed, below the success ratio ${(s.successBp / BP).toFixed(3)}`,
    executed,
    failures,
  };
}
