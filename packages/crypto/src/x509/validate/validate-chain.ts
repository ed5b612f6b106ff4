import { X509Certificate } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { checkLeaf, checkStructure, checkValidity } from './cert-checks.js';
import { isFailure, parseCert, type ParsedCert } from './parse-cert.js';
import { HARD_PATH_LIMIT, PathBuilder, type PoolEntry } from './path-builder.js';
import { DEFAULT_POLICY_INPUTS, processPolicies, type PolicyInputs } from './policy-tree.js';
import { checkEkProfile } from './tcg-ek-profile.js';
import { checkRevocation } from './revocation.js';
import {
  KEY_USAGE_BITS,
  type CertInput,
  type Failure,
  type ValidationInput,
  type ValidationProfile,
  type ValidationResult,
} from './types.js';

export const DEFAULT_MAX_DEPTH = 8;
export const DEFAULT_MAX_SIGNATURE_CHECKS = 64;
export const DEFAULT_DEADLINE_MS = 2000;
/** Largest certificate pool (anchors + intermediates) accepted for one call. */
export const MAX_POOL = 1024;
/** Most intermediates accepted from the (possibly hostile) presenter of a chain. */
export const MAX_INTERMEDIATES = 64;

// Parsing is pure and X509Certificate objects are immutable, so anchors that callers keep as
// X509Certificate are read once per process, not once per validation (STYLE §8).
const parsedCache = new WeakMap<X509Certificate, ParsedCert>();

const objectFor = new WeakMap<ParsedCert, X509Certificate>();

function parseInput(input: CertInput, der: Buffer): ParsedCert | Failure {
  if (!(input instanceof X509Certificate)) return parseCert(der);
  const hit = parsedCache.get(input);
  if (hit) return hit;
  const parsed = parseCert(der);
  if (!isFailure(parsed)) {
    parsedCache.set(input, parsed);
    objectFor.set(parsed, input);
  }
  return parsed;
}

const refuse = (f: Failure): ValidationResult => ({ ok: false, reason: f.code, detail: f.detail });
const bad = (detail: string): ValidationResult => ({ ok: false, reason: 'invalid_input', detail });

function toDer(input: CertInput): Buffer | undefined {
  if (input instanceof X509Certificate) return input.raw;
  if (input instanceof Uint8Array) {
    const buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    if (buf[0] === 0x30) return buf;
    // Accept a single PEM block too, since that is how anchors are usually configured.
    const m = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(buf.toString('latin1'));
    return m?.[1] ? Buffer.from(m[1].replace(/\s+/g, ''), 'base64') : undefined;
  }
  return undefined;
}

const isOid = (o: unknown): boolean => typeof o === 'string' && /^[0-2](\.(0|[1-9]\d*))+$/.test(o);

/** RFC 5280 §6.1.1 (c), (e)-(g) with their defaults: any policy, nothing required or inhibited. */
function policyInputs(input: ValidationInput): PolicyInputs | undefined {
  const set = input.initialPolicySet ?? DEFAULT_POLICY_INPUTS.initialPolicySet;
  const flags = [input.initialExplicitPolicy, input.initialPolicyMappingInhibit, input.initialAnyPolicyInhibit];
  if (!Array.isArray(set) || set.length === 0 || !set.every(isOid) || flags.some((f) => f !== undefined && typeof f !== 'boolean')) return undefined;
  return {
    initialPolicySet: [...set],
    initialExplicitPolicy: input.initialExplicitPolicy ?? false,
    initialPolicyMappingInhibit: input.initialPolicyMappingInhibit ?? false,
    initialAnyPolicyInhibit: input.initialAnyPolicyInhibit ?? false,
  };
}

function positiveInt(v: number | undefined, fallback: number, max: number): number | undefined {
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || v < 0) return undefined;
  return Math.min(v, max);
}

/**
 * Validates `leaf` up to one of `trustAnchors` (RFC 5280 §6.1), building the path from
 * `intermediates` with bounded backtracking. Every certificate, the anchor included, must be
 * well-formed, within its validity period at `time`, and free of critical extensions we do not
 * process; issuers must be CAs allowed to sign certificates; pathLen and name constraints hold
 * along the path; certificate policies are processed (RFC 5280 §6.1, from `initialPolicySet` and
 * the policy flags); the leaf meets `requiredKeyUsage`, `requiredEku` and `peerName`, and the
 * rules of `profile` (`tcg-ek`: the TCG EK Credential Profile, checked once a path exists).
 *
 * Never throws: every refusal is `{ ok: false, reason, detail }` where `reason` is from the closed
 * {@link ValidationFailureCode} set and `detail` is meant for logs.
 *
 * @example
 * const r = validateChain({ leaf, intermediates, trustAnchors: [root], requiredEku: ['1.3.6.1.5.5.7.3.2'] });
 * if (!r.ok) log.warn({ reason: r.reason, detail: r.detail }, 'device certificate refused');
 */
export function validateChain(input: ValidationInput): ValidationResult {
  try {
    return run(input);
  } catch {
    // Reaching here is a bug in this module, not a property of the input; still fail closed.
    return { ok: false, reason: 'malformed', detail: 'internal error while validating' };
  }
}

function run(input: ValidationInput): ValidationResult {
  const started = performance.now();
  const time = input.time ?? new Date();
  if (!(time instanceof Date) || Number.isNaN(time.getTime())) return bad('time is not a valid Date');
  const maxDepth = positiveInt(input.maxDepth, DEFAULT_MAX_DEPTH, HARD_PATH_LIMIT - 2);
  const maxSignatureChecks = positiveInt(input.maxSignatureChecks, DEFAULT_MAX_SIGNATURE_CHECKS, 10_000);
  const deadlineMs = positiveInt(input.deadlineMs, DEFAULT_DEADLINE_MS, 60_000);
  if (maxDepth === undefined || maxSignatureChecks === undefined || deadlineMs === undefined) {
    return bad('maxDepth, maxSignatureChecks and deadlineMs must be non-negative integers');
  }
  const profile: ValidationProfile = input.profile ?? 'rfc5280';
  if (profile !== 'rfc5280' && profile !== 'webpki' && profile !== 'tcg-ek') return bad('unknown profile');
  // TCG EK profile: an EK certificate names a TPM, never a host.
  if (profile === 'tcg-ek' && input.peerName !== undefined) return bad('the tcg-ek profile takes no peerName');
  const requiredEku = [...(input.requiredEku ?? [])];
  const requiredKeyUsage = [...(input.requiredKeyUsage ?? [])];
  if (requiredKeyUsage.some((k) => !(k in KEY_USAGE_BITS))) return bad('unknown key usage name');
  if (requiredEku.some((o) => !isOid(o))) return bad('requiredEku entries must be dotted OIDs');
  const policy = policyInputs(input);
  if (!policy) return bad('initialPolicySet must be a non-empty list of dotted OIDs; the policy flags booleans');
  const intermediates = input.intermediates ?? [];
  const anchors = input.trustAnchors ?? [];
  if (intermediates.length > MAX_INTERMEDIATES || intermediates.length + anchors.length > MAX_POOL) {
    return { ok: false, reason: 'work_limit', detail: `more than ${MAX_INTERMEDIATES} intermediates or ${MAX_POOL} certificates supplied` };
  }

  const leafDer = toDer(input.leaf);
  if (!leafDer) return { ok: false, reason: 'malformed', detail: 'leaf is not a DER or PEM certificate' };
  const leaf = parseInput(input.leaf, leafDer);
  if (isFailure(leaf)) return refuse(leaf);
  const leafFailure =
    checkStructure(leaf, profile) ??
    checkValidity(leaf, time) ??
    checkLeaf(leaf, { requiredEku, requiredKeyUsage, peerName: input.peerName, profile });
  if (leafFailure) return refuse(leafFailure);

  // One parse per distinct certificate; a certificate given both ways counts as an anchor.
  const byDer = new Map<string, PoolEntry>();
  const unusable: string[] = [];
  const add = (raw: CertInput, anchor: boolean): void => {
    const der = toDer(raw);
    if (!der) {
      unusable.push(`${anchor ? 'anchor' : 'intermediate'}: not DER or PEM`);
      return;
    }
    const id = der.toString('base64');
    const seen = byDer.get(id);
    if (seen && (seen.anchor || !anchor)) return;
    const cert = seen?.cert ?? parseInput(raw, der);
    if (isFailure(cert)) unusable.push(`${anchor ? 'anchor' : 'intermediate'}: ${cert.code} (${cert.detail})`);
    else byDer.set(id, { cert, anchor });
  };
  anchors.forEach((a) => add(a, true));
  intermediates.forEach((c) => add(c, false));

  // A leaf that is itself configured as trusted (a pinned device certificate) needs no path. Not
  // an EK certificate: its manufacturer vouches for it, and an EK is pinned by its key's hash.
  const pinned = byDer.get(leafDer.toString('base64'));
  let path: ParsedCert[] | Failure;
  if (pinned?.anchor && profile !== 'tcg-ek') {
    path = [leaf];
  } else {
    const builder = new PathBuilder([...byDer.values()], {
      time,
      profile,
      requiredEku,
      policy,
      maxDepth,
      maxSignatureChecks,
      deadline: started + deadlineMs,
    });
    path = builder.build(leaf);
  }
  if (isFailure(path)) {
    // Certificates we could not even read never became candidates; say so, or an operator
    // chasing "untrusted" would never learn their anchor file is broken.
    const note = unusable.length ? `; ${unusable.length} supplied certificate(s) unreadable: ${unusable.slice(0, 3).join('; ')}` : '';
    return { ok: false, reason: path.code, detail: path.detail + note };
  }
  // A pinned leaf is itself the trust anchor: no §6.1 path, so no policy to process.
  const policies = path.length > 1 ? processPolicies(path, policy) : [];
  if (isFailure(policies)) return refuse(policies);
  if (profile === 'tcg-ek') {
    const f = checkEkProfile(leaf);
    if (f) return refuse(f);
  }
  // RFC 5280 §6.3: revocation last, on the path that is otherwise valid.
  const revocation = input.revocation === undefined ? undefined : checkRevocation(path, input.revocation, time);
  if (isFailure(revocation)) return refuse(revocation);
  try {
    return { ok: true, chain: path.map((c) => objectFor.get(c) ?? new X509Certificate(c.der)), policies: [...policies], ...(revocation === undefined ? {} : { revocation }) };
  } catch {
    return { ok: false, reason: 'malformed', detail: 'certificate rejected by the platform parser' };
  }
}
