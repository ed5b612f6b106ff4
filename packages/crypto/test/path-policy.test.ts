/**
 * RFC 5280 §6.1 certificate policy processing (valid_policy_tree, explicit_policy,
 * inhibit_anyPolicy, policy_mapping) and the strict decoding of the policy extensions, on
 * certificates minted in-test. Policy extensions are built with packages/crypto/src/pki/der.ts.
 */
import 'reflect-metadata';
import { beforeAll, describe, expect, test } from 'vitest';
import { ia5String, oid, seq, smallInteger, utf8String } from '../src/pki/der.js';
import { ANY, constraints, CPS, inhibitAny, mappings, P1, P2, P3, policies, UNOTICE } from './support/policy-extensions.js';
import { check, expectAccepted, expectRefused, make, rawExtension, type Made } from './support/x509-fixtures.js';

let root: Made;
const ca = (name: string, issuer: Made, extra: ReturnType<typeof rawExtension>[]) => make({ name, ca: true, issuer, extra });
const ee = (issuer: Made, extra: ReturnType<typeof rawExtension>[]) => make({ name: 'device', issuer, extra });
const run = (leaf: Made, intermediates: Made[], opts: Parameters<typeof check>[0] extends infer T ? Partial<T> : never = {}) =>
  check({ leaf: leaf.der, intermediates: intermediates.map((m) => m.der), trustAnchors: [root.der], ...opts });

beforeAll(async () => {
  root = await make({ name: 'Policy Root', ca: true });
});

describe('RFC 5280 §6.1 policy processing: refusals', () => {
  test('fail: a non-critical requireExplicitPolicy=0 is honoured when the leaf asserts no policy (§6.1.4(i))', async () => {
    for (const critical of [false, true]) {
      const inter = await ca('Policy CA', root, [policies(false, P1), constraints(critical, { require: 0 })]);
      expectRefused(run(await ee(inter, []), [inter]), 'policy');
    }
  });

  test('fail: requireExplicitPolicy counts skip certificates down to the leaf (§6.1.4(h), §6.1.5(a))', async () => {
    const inter = await ca('Policy CA', root, [policies(false, P1), constraints(false, { require: 2 })]);
    const inter2 = await ca('Policy CA 2', inter, [policies(false, P1)]);
    expectRefused(run(await ee(inter2, []), [inter, inter2]), 'policy');
    const relaxed = await ca('Policy CA', root, [policies(false, P1), constraints(false, { require: 3 })]);
    const relaxed2 = await ca('Policy CA 2', relaxed, [policies(false, P1)]);
    expectAccepted(run(await ee(relaxed2, []), [relaxed, relaxed2]));
  });

  test('fail: requireExplicitPolicy on the leaf itself applies (§6.1.5(b))', async () => {
    const inter = await ca('Policy CA', root, [policies(false, P1)]);
    expectRefused(run(await ee(inter, [policies(false, P2), constraints(false, { require: 0 })]), [inter], { initialPolicySet: [P1] }), 'policy');
    expectAccepted(run(await ee(inter, [policies(false, P1), constraints(false, { require: 0 })]), [inter], { initialPolicySet: [P1] }));
  });

  test('fail: with initial-explicit-policy a chain asserting other policies than the caller accepts is refused (§6.1.5(g)(iii))', async () => {
    const inter = await ca('Policy CA', root, [policies(false, P1, P2)]);
    const leaf = await ee(inter, [policies(false, P2)]);
    expectRefused(run(leaf, [inter], { initialPolicySet: [P1], initialExplicitPolicy: true }), 'policy');
    const r = run(leaf, [inter], { initialPolicySet: [P2], initialExplicitPolicy: true });
    expect(r.ok ? r.policies : r).toEqual([P2]);
  });

  test('fail: a policy the issuer did not assert does not survive in the leaf (§6.1.3(d)(1))', async () => {
    const inter = await ca('Policy CA', root, [policies(false, P1)]);
    expectRefused(run(await ee(inter, [policies(false, P2)]), [inter], { initialExplicitPolicy: true }), 'policy');
  });

  test('fail: a certificate without certificatePolicies empties the tree under initial-explicit-policy (§6.1.3(e))', async () => {
    const inter = await ca('Policy CA', root, []);
    expectRefused(run(await ee(inter, [policies(false, P1)]), [inter], { initialExplicitPolicy: true }), 'policy');
  });

  test('fail: inhibitAnyPolicy=0, even non-critical, stops a later anyPolicy from standing in for the leaf policy (§6.1.4(j), §6.1.3(d)(2))', async () => {
    const leafFor = async (inhibit: boolean) => {
      const inter = await ca('Policy CA', root, [policies(false, ANY), ...(inhibit ? [inhibitAny(false, 0)] : [])]);
      const inter2 = await ca('Policy CA 2', inter, [policies(false, ANY)]);
      return { leaf: await ee(inter2, [policies(false, P1)]), chain: [inter, inter2] };
    };
    const ok = await leafFor(false);
    expectAccepted(run(ok.leaf, ok.chain, { initialPolicySet: [P1], initialExplicitPolicy: true }));
    const inhibited = await leafFor(true);
    expectRefused(run(inhibited.leaf, inhibited.chain, { initialPolicySet: [P1], initialExplicitPolicy: true }), 'policy');
  });

  test('fail: inhibitPolicyMapping=0 deletes mapped policies instead of following the mapping (§6.1.4(b)(2), §6.1.4(i))', async () => {
    const mapped = async (inhibit: boolean) => {
      const top = await ca('Policy CA', root, [policies(false, P1), ...(inhibit ? [constraints(false, { inhibitMapping: 0 })] : [])]);
      const mapper = await ca('Mapping CA', top, [policies(false, P1), mappings(false, [P1, P2])]);
      return { leaf: await ee(mapper, [policies(false, P2)]), chain: [top, mapper] };
    };
    const ok = await mapped(false);
    const r = run(ok.leaf, ok.chain, { initialPolicySet: [P1], initialExplicitPolicy: true });
    expect(r.ok ? r.policies : r).toEqual([P1]);
    const inhibited = await mapped(true);
    expectRefused(run(inhibited.leaf, inhibited.chain, { initialPolicySet: [P1], initialExplicitPolicy: true }), 'policy');
  });

  test('fail: an inhibited anyPolicy cannot be revived through a policy mapping (§6.1.3(d)(2), §6.1.4(b)(1))', async () => {
    // OpenSSL accepts this chain with -inhibit_any (it maps through anyPolicy in its policy cache);
    // RFC 5280 gives an inhibited anyPolicy no node to map from. See path-policy-openssl.test.ts.
    const top = await ca('Policy CA', root, [policies(false, P2)]);
    const mapper = await ca('Mapping CA', top, [policies(false, ANY), mappings(false, [P2, P1])]);
    const leaf = await ee(mapper, [policies(false, P1)]);
    const r = run(leaf, [top, mapper], { initialExplicitPolicy: true });
    expect(r.ok ? r.policies : r).toEqual([P2]);
    expectRefused(run(leaf, [top, mapper], { initialExplicitPolicy: true, initialAnyPolicyInhibit: true }), 'policy');
  });

  test('fail: a mapping to or from anyPolicy is refused (§6.1.4(a))', async () => {
    for (const pair of [[ANY, P2], [P1, ANY]] as [string, string][]) {
      const mapper = await ca('Mapping CA', root, [policies(false, P1), mappings(false, pair)]);
      expectRefused(run(await ee(mapper, [policies(false, P2)]), [mapper]), 'bad_extension');
    }
  });

  test('fail: requireExplicitPolicy on the trust anchor is honoured too', async () => {
    const strictRoot = await make({ name: 'Strict Root', ca: true, extra: [constraints(false, { require: 0 })] });
    const leaf = await make({ name: 'device', issuer: strictRoot });
    expectRefused(check({ leaf: leaf.der, trustAnchors: [strictRoot.der] }), 'policy');
  });

  test('fail: an empty or malformed initial-policy-set is a caller error, not "any policy"', async () => {
    const leaf = await ee(root, [policies(false, P1)]);
    expectRefused(run(leaf, [], { initialPolicySet: [] }), 'invalid_input');
    expectRefused(run(leaf, [], { initialPolicySet: ['policy-one'] }), 'invalid_input');
    expectRefused(run(leaf, [], { initialExplicitPolicy: 'yes' as unknown as boolean }), 'invalid_input');
  });

  test('fail: a policy tree blown up by mappings hits the work bound, not the CPU (CVE-2023-0464)', async () => {
    const ids = Array.from({ length: 6 }, (_, i) => `1.3.6.1.4.1.55738.9.${i}`);
    const all: [string, string][] = ids.flatMap((a) => ids.map((b) => [a, b] as [string, string]));
    const chain: Made[] = [];
    let issuer = root;
    for (let i = 0; i < 6; i++) {
      issuer = await ca(`Blowup CA ${i}`, issuer, [policies(false, ...ids), mappings(false, ...all)]);
      chain.push(issuer);
    }
    const started = performance.now();
    expectRefused(run(await ee(issuer, [policies(false, ...ids)]), chain, { maxDepth: 8 }), 'work_limit');
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe('certificatePolicies, policyConstraints, policyMappings: strict decoding', () => {
  test('fail: a critical certificatePolicies with an unknown qualifier is refused (§4.2.1.4)', async () => {
    const odd = { id: P1, qualifiers: [seq(oid('1.3.6.1.4.1.55738.7'), utf8String('?'))] };
    expectRefused(run(await ee(root, [policies(true, odd)]), []), 'bad_extension');
    // Non-critical: the qualifier is ignored, as §4.2.1.4 allows.
    expectAccepted(run(await ee(root, [policies(false, odd)]), []));
  });

  test('CPS pointer and user notice qualifiers are understood in a critical certificatePolicies', async () => {
    const cps = seq(oid(CPS), ia5String('https://pki.fleet.example/cps'));
    const notice = seq(oid(UNOTICE), seq(seq(utf8String('Fleet'), seq(smallInteger(1))), utf8String('Devices only')));
    const r = run(await ee(root, [policies(true, { id: P1, qualifiers: [cps, notice] })]), [], { initialPolicySet: [P1], initialExplicitPolicy: true });
    expect(r.ok ? r.policies : r).toEqual([P1]);
  });

  test('fail: a malformed known qualifier is refused (CPS not IA5String)', async () => {
    expectRefused(run(await ee(root, [policies(false, { id: P1, qualifiers: [seq(oid(CPS), utf8String('https://x.example'))] })]), []), 'bad_extension');
  });

  test('fail: the same policy twice in one certificatePolicies is refused (§4.2.1.4)', async () => {
    expectRefused(run(await ee(root, [policies(false, P1, P3, P1)]), []), 'bad_extension');
  });

  test('fail: an empty policyConstraints is refused (§4.2.1.11)', async () => {
    const inter = await ca('Policy CA', root, [constraints(false, {})]);
    expectRefused(run(await ee(inter, []), [inter]), 'bad_extension');
  });
});

describe('hostile encodings', () => {
  test('fail: every single-byte corruption of a certificate full of policy extensions and names is refused with a code, never an internal error', async () => {
    const inter = await ca('Policy CA', root, [policies(true, P1, ANY), mappings(true, [P1, P2]), constraints(true, { require: 1, inhibitMapping: 0 }), inhibitAny(true, 0)]);
    const cps = seq(oid(CPS), ia5String('https://pki.fleet.example/cps'));
    const leaf = await make({ name: 'device', issuer: inter, dns: ['d.fleet.example'], ips: ['10.0.0.1'], extra: [policies(true, { id: P2, qualifiers: [cps] })] });
    expectAccepted(run(leaf, [inter]));
    let refused = 0;
    for (const target of [inter, leaf]) {
      for (let i = 0; i < target.der.length; i++) {
        for (const mask of [0x01, 0x80]) {
          const bad = Buffer.from(target.der);
          bad[i] = (bad[i] as number) ^ mask;
          const r = target === leaf ? check({ leaf: bad, intermediates: [inter.der], trustAnchors: [root.der] }) : check({ leaf: leaf.der, intermediates: [bad], trustAnchors: [root.der] });
          expect(r.ok ? '' : r.detail).not.toMatch(/internal error/);
          if (!r.ok) refused++;
        }
      }
    }
    // A flipped bit lands in signed bytes, so every corruption must be refused.
    expect(refused).toBe(2 * (inter.der.length + leaf.der.length));
  });
});

describe('RFC 5280 §6.1 policy processing: acceptance', () => {
  test('by default (any policy, no explicit policy) a chain without policies validates', async () => {
    const inter = await ca('Policy CA', root, []);
    const r = run(await ee(inter, []), [inter]);
    expect(r.ok ? r.policies : r).toEqual([]);
  });

  test('anyPolicy in an intermediate lets the leaf policy through (§6.1.3(d)(1)(ii))', async () => {
    const inter = await ca('Policy CA', root, [policies(true, ANY)]);
    const r = run(await ee(inter, [policies(false, P3)]), [inter], { initialPolicySet: [P3], initialExplicitPolicy: true });
    expect(r.ok ? r.policies : r).toEqual([P3]);
  });

  test('critical policyConstraints, policyMappings and inhibitAnyPolicy are processed, not refused as unknown', async () => {
    const inter = await ca('Policy CA', root, [policies(true, P1), constraints(true, { require: 0, inhibitMapping: 1 }), inhibitAny(true, 1), mappings(true, [P1, P2])]);
    const r = run(await ee(inter, [policies(false, P2)]), [inter], { initialPolicySet: [P1] });
    expect(r.ok ? r.policies : r).toEqual([P1]);
  });
});
