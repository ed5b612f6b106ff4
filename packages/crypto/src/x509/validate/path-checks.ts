import { checkCaEku } from './cert-checks.js';
import type { NameConstraintsExt } from './extensions.js';
import { checkConstraintSyntax, checkNames } from './name-constraints.js';
import type { ParsedCert } from './parse-cert.js';
import { processPolicies, type PolicyInputs } from './policy-tree.js';
import { fail, type Failure } from './types.js';

export interface PathRequirements {
  readonly requiredEku: readonly string[];
  readonly policy: PolicyInputs;
}

/**
 * Checks that depend on the whole path, leaf first and trust anchor last (RFC 5280 §6.1.3–6.1.4).
 * Unlike bare RFC 5280 we also enforce the anchor's own pathLenConstraint and name constraints,
 * as webpki and most TLS stacks do: an anchor that says "no more than N below me" means it.
 */
export function checkPath(path: readonly ParsedCert[], req: PathRequirements): Failure | null {
  const n = path.length;
  const anchor = path[n - 1] as ParsedCert;

  // §6.1.4 (l)-(m): self-issued intermediates are not counted.
  let maxPathLength = anchor.ext.basicConstraints?.pathLen ?? Number.POSITIVE_INFINITY;
  for (let i = n - 2; i >= 1; i--) {
    const c = path[i] as ParsedCert;
    if (!c.selfIssued) {
      if (maxPathLength <= 0) return fail('path_len_exceeded', `pathLenConstraint exceeded at depth ${i}`);
      maxPathLength--;
    }
    const pl = c.ext.basicConstraints?.pathLen;
    if (pl !== undefined && pl < maxPathLength) maxPathLength = pl;
  }

  // §6.1.3 (b)-(c) and §6.1.4 (g): constraints from the anchor down; a self-issued certificate is
  // exempt unless it is the leaf.
  const sets: NameConstraintsExt[] = [];
  for (let i = n - 1; i >= 0; i--) {
    const c = path[i] as ParsedCert;
    if (i < n - 1 && (i === 0 || !c.selfIssued)) {
      const f = checkNames(c, sets);
      if (f) return { code: f.code, detail: `${f.detail} (certificate at depth ${i})` };
    }
    const nc = c.ext.nameConstraints;
    if (i > 0 && nc) {
      const f = checkConstraintSyntax(nc);
      if (f) return f;
      sets.push(nc);
    }
  }

  for (let i = 1; i < n; i++) {
    const f = checkCaEku(path[i] as ParsedCert, req.requiredEku);
    if (f) return f;
  }

  // §6.1.3 (d)-(f), §6.1.4 (a)-(b), (h)-(j), §6.1.5 (a)-(b), (g).
  const policies = processPolicies(path, req.policy);
  return Array.isArray(policies) ? null : (policies as Failure);
}
