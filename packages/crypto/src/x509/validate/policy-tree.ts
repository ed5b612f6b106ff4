import type { ParsedCert } from './parse-cert.js';
import { OID } from './oids.js';
import { fail, type Failure } from './types.js';

// RFC 5280 §6.1 certificate policy processing with the valid_policy_tree, step by step. The tree
// is kept as nodes with parent links; `level` holds the nodes of the deepest depth.

const ANY = OID.anyPolicy;

/** Ceiling on tree nodes per path: mappings can grow the tree exponentially (CVE-2023-0464). */
export const MAX_POLICY_NODES = 1000;

/** The §6.1.1 inputs (c), (e), (f), (g). */
export interface PolicyInputs {
  /** user-initial-policy-set; `[anyPolicy]` means "any". */
  readonly initialPolicySet: readonly string[];
  readonly initialExplicitPolicy: boolean;
  readonly initialPolicyMappingInhibit: boolean;
  readonly initialAnyPolicyInhibit: boolean;
}

export const DEFAULT_POLICY_INPUTS: PolicyInputs = {
  initialPolicySet: [ANY],
  initialExplicitPolicy: false,
  initialPolicyMappingInhibit: false,
  initialAnyPolicyInhibit: false,
};

interface PolicyNode {
  readonly policy: string;
  expected: ReadonlySet<string>;
  readonly parent: PolicyNode | null;
  children: PolicyNode[];
}

class TooManyNodes extends Error {}

class Tree {
  root: PolicyNode | null = { policy: ANY, expected: new Set([ANY]), parent: null, children: [] };
  /** Nodes of the deepest depth built so far. */
  level: PolicyNode[] = [this.root as PolicyNode];
  private nodes = 1;

  add(parent: PolicyNode, policy: string, expected: ReadonlySet<string>, into: PolicyNode[]): void {
    if (++this.nodes > MAX_POLICY_NODES) throw new TooManyNodes();
    const node: PolicyNode = { policy, expected, parent, children: [] };
    parent.children.push(node);
    into.push(node);
  }

  /** Deletes `node` and its subtree. */
  remove(node: PolicyNode): void {
    if (!node.parent) return this.clear();
    node.parent.children = node.parent.children.filter((c) => c !== node);
    this.level = this.level.filter((n) => {
      for (let p: PolicyNode | null = n; p; p = p.parent) if (p === node) return false;
      return true;
    });
  }

  clear(): void {
    this.root = null;
    this.level = [];
  }

  /** Deletes every node above `depth` that has no children, repeatedly (§6.1.3(d)(3), §6.1.4(b)(2), §6.1.5(g)(iii)(4)). */
  prune(depth: number): void {
    const keep = (node: PolicyNode, d: number): boolean => {
      if (d === depth) return true;
      node.children = node.children.filter((c) => keep(c, d + 1));
      return node.children.length > 0;
    };
    if (this.root && !keep(this.root, 0)) this.clear();
  }

  /** valid_policy_node_set (§6.1.5(g)(iii)(1)): nodes whose parent's valid_policy is anyPolicy. */
  nodeSet(): PolicyNode[] {
    const out: PolicyNode[] = [];
    const walk = (n: PolicyNode): void => {
      if (n.policy !== ANY) return;
      for (const c of n.children) {
        out.push(c);
        walk(c);
      }
    };
    if (this.root) walk(this.root);
    return out;
  }
}

interface Counters {
  explicit: number;
  mapping: number;
  inhibitAny: number;
}

/** §6.1.4 (i)-(j): policyConstraints and inhibitAnyPolicy only ever lower the counters, whatever their criticality. */
function applyConstraints(c: ParsedCert, k: Counters): void {
  const pc = c.ext.policyConstraints;
  if (pc?.requireExplicitPolicy !== undefined && pc.requireExplicitPolicy < k.explicit) k.explicit = pc.requireExplicitPolicy;
  if (pc?.inhibitPolicyMapping !== undefined && pc.inhibitPolicyMapping < k.mapping) k.mapping = pc.inhibitPolicyMapping;
  const iap = c.ext.inhibitAnyPolicy;
  if (iap !== undefined && iap < k.inhibitAny) k.inhibitAny = iap;
}

/** §6.1.3 (d)-(e) for certificate i of n. */
function processCertificate(tree: Tree, c: ParsedCert, i: number, n: number, k: Counters): void {
  const cp = c.ext.certificatePolicies;
  if (!cp) {
    tree.clear(); // (e)
    return;
  }
  if (!tree.root) return;
  const parents = tree.level;
  const next: PolicyNode[] = [];
  const anyParent = parents.find((p) => p.policy === ANY);
  // (d)(1): each policy other than anyPolicy hangs under every node expecting it, else under anyPolicy.
  for (const { id } of cp.list) {
    if (id === ANY) continue;
    const matching = parents.filter((p) => p.expected.has(id));
    for (const p of matching) tree.add(p, id, new Set([id]), next);
    if (matching.length === 0 && anyParent) tree.add(anyParent, id, new Set([id]), next);
  }
  // (d)(2): anyPolicy stands for every expected policy not yet matched, unless inhibited (a
  // self-issued intermediate still may, §6.1.3(d)(2)).
  if (cp.list.some((p) => p.id === ANY) && (k.inhibitAny > 0 || (i < n && c.selfIssued))) {
    for (const p of parents) {
      const have = new Set(p.children.map((ch) => ch.policy));
      for (const e of p.expected) if (!have.has(e)) tree.add(p, e, new Set([e]), next);
    }
  }
  tree.level = next;
  tree.prune(i); // (d)(3)
}

/** §6.1.4 (a)-(b): policy mappings of intermediate certificate i. */
function processMappings(tree: Tree, c: ParsedCert, i: number, k: Counters): Failure | null {
  const mappings = c.ext.policyMappings;
  if (!mappings) return null;
  // (a) "verify that the special value anyPolicy does not appear as an issuerDomainPolicy or a subjectDomainPolicy".
  if (mappings.some((m) => m.issuerDomainPolicy === ANY || m.subjectDomainPolicy === ANY)) {
    return fail('bad_extension', 'policyMappings maps to or from anyPolicy (RFC 5280 §6.1.4(a))');
  }
  if (!tree.root) return null;
  const byIssuer = new Map<string, Set<string>>();
  for (const m of mappings) byIssuer.set(m.issuerDomainPolicy, (byIssuer.get(m.issuerDomainPolicy) ?? new Set()).add(m.subjectDomainPolicy));
  for (const [idp, sdps] of byIssuer) {
    const nodes = tree.level.filter((n) => n.policy === idp);
    if (k.mapping > 0) {
      // (b)(1): nodes for ID-P now expect the mapped policies; without one, anyPolicy's parent grows one.
      for (const n of nodes) n.expected = sdps;
      const anyNode = tree.level.find((n) => n.policy === ANY);
      if (nodes.length === 0 && anyNode?.parent) tree.add(anyNode.parent, idp, sdps, tree.level);
    } else {
      // (b)(2): mapping inhibited: the nodes for ID-P are deleted.
      for (const n of nodes) tree.remove(n);
      tree.prune(i);
    }
  }
  return null;
}

/** §6.1.5 (g): intersects the tree with the caller's initial policy set. */
function intersect(tree: Tree, initial: readonly string[], n: number): void {
  if (!tree.root || initial.includes(ANY)) return; // (g)(i)-(ii)
  const wanted = new Set(initial);
  // (g)(iii)(2): drop the authority's policies the caller does not accept.
  for (const node of tree.nodeSet()) if (node.policy !== ANY && !wanted.has(node.policy)) tree.remove(node);
  // (g)(iii)(3): an anyPolicy leaf stands for each wanted policy not already present.
  const anyLeaf = tree.level.find((x) => x.policy === ANY);
  if (anyLeaf?.parent) {
    const present = new Set(tree.nodeSet().map((x) => x.policy));
    for (const p of wanted) if (!present.has(p)) tree.add(anyLeaf.parent, p, new Set([p]), tree.level);
    tree.remove(anyLeaf);
  }
  tree.prune(n); // (g)(iii)(4)
}

/**
 * RFC 5280 §6.1 policy processing over `path` (leaf first, trust anchor last). The anchor is not
 * part of the §6.1 path, but its policyConstraints and inhibitAnyPolicy are honoured as if they
 * were inputs, as its pathLenConstraint and nameConstraints are (see path-checks.ts).
 *
 * @returns the user-constrained policy set (anyPolicy only when the caller accepts any), or a
 *   `policy` failure when an explicit policy is required and none survives.
 */
export function processPolicies(path: readonly ParsedCert[], inputs: PolicyInputs): readonly string[] | Failure {
  try {
    return run(path, inputs);
  } catch (e) {
    if (e instanceof TooManyNodes) return fail('work_limit', `certificate policy tree larger than ${MAX_POLICY_NODES} nodes`);
    throw e;
  }
}

function run(path: readonly ParsedCert[], inputs: PolicyInputs): readonly string[] | Failure {
  const certs = path.slice(0, -1).reverse(); // certs[0] is certificate 1 (issued by the anchor), certs[n-1] the leaf.
  const n = certs.length;
  const anchor = path[path.length - 1] as ParsedCert;
  const tree = new Tree(); // §6.1.2 (a)
  // §6.1.2 (d)-(f)
  const k: Counters = {
    explicit: inputs.initialExplicitPolicy ? 0 : n + 1,
    inhibitAny: inputs.initialAnyPolicyInhibit ? 0 : n + 1,
    mapping: inputs.initialPolicyMappingInhibit ? 0 : n + 1,
  };
  applyConstraints(anchor, k);
  const none = (i: number): Failure => fail('policy', `no acceptable certificate policy at certificate ${i} of ${n} (RFC 5280 §6.1.3(f))`);
  for (let i = 1; i <= n; i++) {
    const c = certs[i - 1] as ParsedCert;
    processCertificate(tree, c, i, n, k);
    if (k.explicit === 0 && !tree.root) return none(i); // §6.1.3 (f)
    if (i === n) break;
    const f = processMappings(tree, c, i, k); // §6.1.4 (a)-(b)
    if (f) return f;
    if (!c.selfIssued) {
      // §6.1.4 (h)
      if (k.explicit > 0) k.explicit--;
      if (k.mapping > 0) k.mapping--;
      if (k.inhibitAny > 0) k.inhibitAny--;
    }
    applyConstraints(c, k); // §6.1.4 (i)-(j)
  }
  // §6.1.5 (a)-(b)
  const leaf = certs[n - 1];
  if (k.explicit > 0) k.explicit--;
  if (leaf?.ext.policyConstraints?.requireExplicitPolicy === 0) k.explicit = 0;
  intersect(tree, inputs.initialPolicySet, n); // §6.1.5 (g)
  if (k.explicit === 0 && !tree.root) return fail('policy', 'no certificate policy acceptable to the caller survives the path (RFC 5280 §6.1.5(g))');
  const anyAccepted = inputs.initialPolicySet.includes(ANY);
  const policies = new Set(tree.nodeSet().map((x) => x.policy).filter((p) => anyAccepted || p !== ANY));
  return [...policies].sort();
}
