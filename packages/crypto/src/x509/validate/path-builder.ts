import { performance } from 'node:perf_hooks';
import { checkAnchorProfile, checkIssuer, checkStructure, checkValidity } from './cert-checks.js';
import { isFailure, type ParsedCert } from './parse-cert.js';
import { checkPath } from './path-checks.js';
import type { PolicyInputs } from './policy-tree.js';
import { verifySignature } from './signature.js';
import { fail, type Failure, type ValidationProfile } from './types.js';

/** Absolute ceiling on certificates in one candidate path, whatever maxDepth says. */
export const HARD_PATH_LIMIT = 34;
/** Ceiling on issuer candidates considered per call (cheap name matches included). */
export const MAX_EXPANSIONS = 4096;

export interface PoolEntry {
  readonly cert: ParsedCert;
  readonly anchor: boolean;
}

export interface BuildOptions {
  readonly time: Date;
  readonly profile: ValidationProfile;
  readonly requiredEku: readonly string[];
  readonly policy: PolicyInputs;
  readonly maxDepth: number;
  readonly maxSignatureChecks: number;
  readonly deadline: number;
}

class WorkLimit extends Error {}

/**
 * Depth-first path building from the leaf towards any trust anchor (RFC 4158 §2–3): anchors are
 * tried before intermediates, and AKI/SKI rule out candidates early. Every candidate costs one
 * unit of a bounded budget and every signature one check, so a crafted pool (cross-signed loops,
 * many same-named CAs) ends in `work_limit`, never in a hang.
 */
export class PathBuilder {
  private readonly bySubject = new Map<string, PoolEntry[]>();
  private readonly roleCache = new Map<PoolEntry, Failure | null>();
  private readonly sigCache = new Map<ParsedCert, Map<ParsedCert, Failure | null>>();
  private signatureChecks = 0;
  private expansions = 0;
  private best: { failure: Failure; depth: number } | undefined;

  constructor(
    pool: readonly PoolEntry[],
    private readonly opts: BuildOptions,
  ) {
    for (const entry of pool) {
      const list = this.bySubject.get(entry.cert.subject.key) ?? [];
      list.push(entry);
      this.bySubject.set(entry.cert.subject.key, list);
    }
  }

  /** A valid path leaf-first, or the most informative failure met while searching. */
  build(leaf: ParsedCert): ParsedCert[] | Failure {
    try {
      const path = this.extend([leaf]);
      if (path) return path;
    } catch (e) {
      if (e instanceof WorkLimit) return fail('work_limit', e.message);
      throw e;
    }
    return this.best?.failure ?? fail('untrusted', 'no path to a trust anchor');
  }

  private note(failure: Failure, depth: number): void {
    // A concrete defect beats "no issuer found"; among defects, the one deepest in the search
    // is the closest to a valid path and so the most useful to an operator.
    const cur = this.best;
    const specific = failure.code !== 'untrusted';
    const curSpecific = cur !== undefined && cur.failure.code !== 'untrusted';
    if (!cur || (specific && !curSpecific) || (specific === curSpecific && depth > cur.depth)) {
      this.best = { failure, depth };
    }
  }

  private tick(): void {
    if (++this.expansions > MAX_EXPANSIONS) throw new WorkLimit(`more than ${MAX_EXPANSIONS} candidate issuers considered`);
    if (performance.now() > this.opts.deadline) throw new WorkLimit('deadline reached');
  }

  private candidates(child: ParsedCert): PoolEntry[] {
    const aki = child.ext.authorityKeyId?.keyId;
    const named = this.bySubject.get(child.issuer.key) ?? [];
    // §4.2.1.1: when both identifiers exist they must agree; a mismatch is not our issuer.
    const usable = named.filter((e) => !aki || !e.cert.ext.subjectKeyId || e.cert.ext.subjectKeyId.equals(aki));
    const rank = (e: PoolEntry): number => (e.anchor ? 0 : 2) + (aki && e.cert.ext.subjectKeyId ? 0 : 1);
    return usable.sort((a, b) => rank(a) - rank(b));
  }

  private roleCheck(entry: PoolEntry): Failure | null {
    if (this.roleCache.has(entry)) return this.roleCache.get(entry) ?? null;
    const c = entry.cert;
    const f =
      checkStructure(c, this.opts.profile) ??
      checkValidity(c, this.opts.time) ??
      checkIssuer(c) ??
      (entry.anchor ? checkAnchorProfile(c, this.opts.profile) : null);
    this.roleCache.set(entry, f);
    return f;
  }

  private signatureCheck(child: ParsedCert, issuer: ParsedCert): Failure | null {
    let row = this.sigCache.get(child);
    if (!row) this.sigCache.set(child, (row = new Map()));
    if (row.has(issuer)) return row.get(issuer) ?? null;
    if (++this.signatureChecks > this.opts.maxSignatureChecks) {
      throw new WorkLimit(`more than ${this.opts.maxSignatureChecks} signature checks`);
    }
    const alg = child.signatureAlgorithm;
    const key = issuer.publicKey;
    const f = isFailure(alg) ? alg : isFailure(key) ? key : verifySignature(alg, key, child.tbs, child.signature);
    row.set(issuer, f);
    return f;
  }

  private extend(path: ParsedCert[]): ParsedCert[] | null {
    const child = path[path.length - 1] as ParsedCert;
    const depth = path.length;
    const candidates = this.candidates(child);
    if (candidates.length === 0) this.note(fail('untrusted', 'no issuer certificate found'), depth);
    for (const entry of candidates) {
      this.tick();
      const c = entry.cert;
      // RFC 4158 §5.2: a certificate, or a (subject, key) pair, may appear at most once per path.
      if (path.some((p) => p === c || (p.subject.key === c.subject.key && p.spki.equals(c.spki)))) continue;
      const role = this.roleCheck(entry);
      if (role) {
        this.note(role, depth);
        continue;
      }
      const sig = this.signatureCheck(child, c);
      if (sig) {
        this.note(sig, depth);
        continue;
      }
      const next = [...path, c];
      if (entry.anchor) {
        const f = checkPath(next, this.opts);
        if (!f) return next;
        this.note(f, depth);
        continue;
      }
      const logical = next.slice(1).filter((p) => !p.selfIssued).length;
      if (logical > this.opts.maxDepth || next.length >= HARD_PATH_LIMIT) {
        this.note(fail('max_depth_exceeded', `more than ${this.opts.maxDepth} intermediates`), depth);
        continue;
      }
      const found = this.extend(next);
      if (found) return found;
    }
    return null;
  }
}
