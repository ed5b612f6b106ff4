/**
 * Differential test of RFC 5280 §6.1 policy processing against OpenSSL's (`openssl verify
 * -policy_check`): seeded random chains of 1–3 intermediates whose certificates carry random
 * certificatePolicies (anyPolicy included), policyMappings, policyConstraints and
 * inhibitAnyPolicy, under random initial inputs. Every other property of the chains is valid, so
 * the two verdicts differ only if the policy processing does.
 *
 * One divergence is known and checked for rather than hidden: OpenSSL applies a certificate's
 * policyMappings to its anyPolicy in its policy cache (pcy_map.c), so a CA asserting anyPolicy and
 * mapping P→Q acts as if it asserted P even where anyPolicy is inhibited. RFC 5280 §6.1.3(d)(2)
 * gives an inhibited anyPolicy no effect, and §6.1.4(b)(1) only maps from a depth-i anyPolicy node
 * that then does not exist, so we refuse where OpenSSL accepts (we are the stricter one).
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { toPem } from '../src/pki/pem.js';
import { openssl, tempDir } from './support/pki-openssl.js';
import { ANY, constraints, inhibitAny, mappings, P1, P2, P3, policies } from './support/policy-extensions.js';
import { check, make, newKeys, NOW, type CryptoKeyPair, type Made } from './support/x509-fixtures.js';

const SCENARIOS = 120;
const SEED = 0x5280;

/** mulberry32: small, seeded, reproducible. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Scenario {
  readonly text: string;
  readonly leaf: Made;
  readonly intermediates: Made[];
  readonly initialPolicySet: string[];
  readonly explicit: boolean;
  readonly inhibitMap: boolean;
  readonly inhibitAnyInput: boolean;
  /** A CA maps from a policy it only covers through anyPolicy while anyPolicy may be inhibited. */
  readonly mappedAnyUnderInhibit: boolean;
}

let root: Made;
let keys: CryptoKeyPair[];
let tmp: Awaited<ReturnType<typeof tempDir>>;

beforeAll(async () => {
  keys = await Promise.all([0, 1, 2, 3].map(() => newKeys()));
  root = await make({ name: 'Differential Root', ca: true });
  tmp = await tempDir();
});
afterAll(() => tmp.dispose());

async function scenario(r: () => number): Promise<Scenario> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const subset = (xs: readonly string[], max: number): string[] => {
    const out = new Set<string>();
    const n = 1 + Math.floor(r() * max);
    while (out.size < n) out.add(pick(xs));
    return [...out];
  };
  const lines: string[] = [];
  let mappedAny = false;
  let inhibitsAny = false;
  const extensionsFor = (isCa: boolean) => {
    const ext = [];
    const desc: string[] = [];
    let ps: string[] = [];
    if (r() < 0.85) {
      ps = subset([P1, P2, P3, ANY], 2);
      ext.push(policies(r() < 0.3, ...ps));
      desc.push(`policies ${ps.map(short).join(',')}`);
    }
    if (isCa && r() < 0.3) {
      const pairs = Array.from({ length: 1 + Math.floor(r() * 2) }, () => [pick([P1, P2, P3]), pick([P1, P2, P3])] as [string, string]);
      const unique = [...new Map(pairs.map((p) => [p.join(), p])).values()];
      ext.push(mappings(false, ...unique));
      if (ps.includes(ANY) && unique.some(([from]) => !ps.includes(from))) mappedAny = true;
      desc.push(`map ${unique.map(([a, b]) => `${short(a)}>${short(b)}`).join(',')}`);
    }
    if (r() < (isCa ? 0.3 : 0.15)) {
      const c: { require?: number; inhibitMapping?: number } = {};
      if (r() < 0.7) c.require = pick([0, 1, 2]);
      if (isCa && (c.require === undefined || r() < 0.4)) c.inhibitMapping = pick([0, 1]);
      if (c.require === undefined && c.inhibitMapping === undefined) c.require = 0;
      ext.push(constraints(r() < 0.5, c));
      desc.push(`pc ${JSON.stringify(c)}`);
    }
    if (isCa && r() < 0.2) {
      const n = pick([0, 1]);
      ext.push(inhibitAny(r() < 0.5, n));
      inhibitsAny = true;
      desc.push(`inhibitAny ${n}`);
    }
    return { ext, desc: desc.join('; ') || 'no policy extensions' };
  };
  const intermediates: Made[] = [];
  let issuer = root;
  const depth = 1 + Math.floor(r() * 3);
  for (let i = 0; i < depth; i++) {
    const { ext, desc } = extensionsFor(true);
    issuer = await make({ name: `Policy CA ${i}`, ca: true, issuer, keys: keys[i] as CryptoKeyPair, extra: ext });
    intermediates.push(issuer);
    lines.push(`CA ${i}: ${desc}`);
  }
  const { ext, desc } = extensionsFor(false);
  const leaf = await make({ name: 'device', issuer, keys: keys[3] as CryptoKeyPair, extra: ext });
  lines.push(`leaf: ${desc}`);
  const initialPolicySet = r() < 0.5 ? [ANY] : subset([P1, P2, P3], 2);
  const explicit = r() < 0.5;
  const inhibitMap = r() < 0.2;
  const inhibitAnyInput = r() < 0.2;
  lines.push(`inputs: set ${initialPolicySet.map(short).join(',')}${explicit ? ' explicit' : ''}${inhibitMap ? ' inhibit-map' : ''}${inhibitAnyInput ? ' inhibit-any' : ''}`);
  const mappedAnyUnderInhibit = mappedAny && (inhibitsAny || inhibitAnyInput);
  return { text: lines.join(' | '), leaf, intermediates, initialPolicySet, explicit, inhibitMap, inhibitAnyInput, mappedAnyUnderInhibit };
}

const short = (oid: string): string => (oid === ANY ? 'any' : `P${oid.slice(-1)}`);

async function opensslSays(s: Scenario, n: number): Promise<boolean> {
  const rootFile = await tmp.file(`root.pem`, toPem(root.der, 'CERTIFICATE'));
  const untrusted = await tmp.file(`untrusted-${n}.pem`, s.intermediates.map((m) => toPem(m.der, 'CERTIFICATE')).join(''));
  const leafFile = await tmp.file(`leaf-${n}.pem`, toPem(s.leaf.der, 'CERTIFICATE'));
  const args = ['verify', '-CAfile', rootFile, '-untrusted', untrusted, '-attime', String(Math.floor(NOW.getTime() / 1000)), '-policy_check'];
  if (s.explicit) args.push('-explicit_policy');
  if (s.inhibitMap) args.push('-inhibit_map');
  if (s.inhibitAnyInput) args.push('-inhibit_any');
  // OpenSSL reads "no -policy" as an empty user-initial-policy-set, not RFC 5280's anyPolicy default.
  for (const p of s.initialPolicySet) args.push('-policy', p);
  args.push(leafFile);
  return (await openssl(args)).ok;
}

describe('policy processing agrees with OpenSSL on random policy chains', () => {
  test(`${SCENARIOS} seeded scenarios: same verdict as openssl verify -policy_check`, async () => {
    const r = rng(SEED);
    const disagreements: string[] = [];
    const known: string[] = [];
    let accepted = 0;
    for (let n = 0; n < SCENARIOS; n++) {
      const s = await scenario(r);
      const ours = check({
        leaf: s.leaf.der,
        intermediates: s.intermediates.map((m) => m.der),
        trustAnchors: [root.der],
        initialPolicySet: s.initialPolicySet,
        initialExplicitPolicy: s.explicit,
        initialPolicyMappingInhibit: s.inhibitMap,
        initialAnyPolicyInhibit: s.inhibitAnyInput,
      });
      const theirs = await opensslSays(s, n);
      if (ours.ok) accepted++;
      if (ours.ok === theirs) continue;
      const line = `#${n} ours ${ours.ok ? 'ok' : `${ours.reason}: ${ours.detail}`}, openssl ${theirs ? 'ok' : 'refused'}: ${s.text}`;
      if (!ours.ok && ours.reason === 'policy' && theirs && s.mappedAnyUnderInhibit) known.push(line);
      else disagreements.push(line);
    }
    if (known.length) console.log(`known OpenSSL divergence (mapping through an inhibited anyPolicy), we refuse:\n${known.join('\n')}`);
    expect(disagreements).toEqual([]);
    // Both verdicts must occur often enough for the comparison to mean something.
    expect(accepted).toBeGreaterThan(SCENARIOS / 5);
    expect(SCENARIOS - accepted).toBeGreaterThan(SCENARIOS / 5);
  }, 120_000);
});
