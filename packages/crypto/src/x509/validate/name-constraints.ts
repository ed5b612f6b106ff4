import type { NameConstraintsExt } from './extensions.js';
import type { GeneralName } from './general-names.js';
import { isValidDnsName, isValidMailbox } from './hostname.js';
import { isDnPrefix } from './names.js';
import type { ParsedCert } from './parse-cert.js';
import { fail, type Failure } from './types.js';

// RFC 5280 §4.2.1.10 and §6.1.3 (b)-(c), §6.1.4 (g). Rather than computing the intersection of
// permitted subtrees, we keep every constraint set met on the path and require a name to satisfy
// each of them: the same result, and no set algebra to get wrong.

function isValidDnsConstraint(c: string): boolean {
  if (c === '') return true;
  return isValidDnsName(c.startsWith('.') ? c.slice(1) : c);
}

function isContiguousMask(mask: Buffer): boolean {
  let seenZero = false;
  for (const byte of mask) {
    for (let bit = 7; bit >= 0; bit--) {
      const one = (byte >> bit) & 1;
      if (one && seenZero) return false;
      if (!one) seenZero = true;
    }
  }
  return true;
}

/** Each constraint must itself be well-formed; a CA that writes garbage constrains nothing safely. */
function constraintProblem(c: GeneralName): string | null {
  switch (c.type) {
    case 'dns':
      return isValidDnsConstraint(c.value.toLowerCase()) ? null : `malformed dNSName constraint`;
    case 'ip': {
      // §4.2.1.10: address followed by a mask, 8 octets for IPv4 and 32 for IPv6, in CIDR form.
      if (c.bytes.length !== 8 && c.bytes.length !== 32) return 'iPAddress constraint of bad length';
      const half = c.bytes.length / 2;
      return isContiguousMask(c.bytes.subarray(half)) ? null : 'iPAddress constraint mask not in CIDR form';
    }
    case 'email':
      return c.value.includes('@') ? (isValidMailbox(c.value) ? null : 'malformed rfc822Name constraint') : isValidDnsConstraint(c.value.toLowerCase()) ? null : 'malformed rfc822Name constraint';
    case 'uri':
      return isValidDnsConstraint(c.value.toLowerCase()) ? null : 'malformed URI constraint';
    default:
      return null;
  }
}

export function checkConstraintSyntax(nc: NameConstraintsExt): Failure | null {
  for (const c of [...nc.permitted, ...nc.excluded]) {
    const problem = constraintProblem(c);
    if (problem) return fail('name_constraints', problem);
  }
  return null;
}

function dnsWithin(name: string, c: string): boolean {
  if (c === '') return true;
  if (c.startsWith('.')) return name.endsWith(c);
  return name === c || name.endsWith(`.${c}`);
}

function uriHost(uri: string): string | undefined {
  // RFC 3986 §3.2: host sits after "//" and before any path, port or query.
  const m = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?([^:/?#]*)/i.exec(uri);
  const host = m?.[1]?.toLowerCase();
  return host && isValidDnsName(host) ? host : undefined;
}

type Verdict = 'match' | 'no-match' | 'invalid' | 'unsupported';

function matches(name: GeneralName, c: GeneralName, excluded: boolean): Verdict {
  if (name.type !== c.type) return 'no-match';
  switch (name.type) {
    case 'dns': {
      const n = name.value.toLowerCase();
      if (!isValidDnsName(n, true)) return 'invalid';
      const cv = (c as { value: string }).value.toLowerCase();
      if (dnsWithin(n, cv)) return 'match';
      // An excluded subtree inside a wildcard's reach is reachable through the wildcard.
      if (excluded && n.startsWith('*.')) return dnsWithin(cv.replace(/^\./, ''), n.slice(2)) ? 'match' : 'no-match';
      return 'no-match';
    }
    case 'ip': {
      if (name.bytes.length !== 4 && name.bytes.length !== 16) return 'invalid';
      const cb = (c as { bytes: Buffer }).bytes;
      if (cb.length !== name.bytes.length * 2) return 'no-match';
      const len = name.bytes.length;
      for (let i = 0; i < len; i++) {
        const mask = cb[len + i] as number;
        if (((name.bytes[i] as number) & mask) !== ((cb[i] as number) & mask)) return 'no-match';
      }
      return 'match';
    }
    case 'email': {
      if (!isValidMailbox(name.value)) return 'invalid';
      const cv = (c as { value: string }).value;
      const at = name.value.lastIndexOf('@');
      const host = name.value.slice(at + 1).toLowerCase();
      if (cv.includes('@')) {
        const cat = cv.lastIndexOf('@');
        return name.value.slice(0, at) === cv.slice(0, cat) && host === cv.slice(cat + 1).toLowerCase() ? 'match' : 'no-match';
      }
      const ch = cv.toLowerCase();
      return (ch.startsWith('.') ? host.endsWith(ch) : host === ch) ? 'match' : 'no-match';
    }
    case 'uri': {
      // §4.2.1.10: a URI without an FQDN host cannot be checked and MUST be rejected.
      const host = uriHost(name.value);
      if (!host) return 'invalid';
      const ch = (c as { value: string }).value.toLowerCase();
      return (ch.startsWith('.') ? host.endsWith(ch) : host === ch) ? 'match' : 'no-match';
    }
    case 'dn':
      return isDnPrefix((c as { name: typeof name.name }).name, name.name) ? 'match' : 'no-match';
    case 'other':
      return name.kind === (c as { kind: string }).kind ? 'unsupported' : 'no-match';
  }
}

/** Every name the constraints apply to: subject DN, its emailAddress values, and the SAN. */
function subjectNames(cert: ParsedCert): GeneralName[] {
  const names: GeneralName[] = [];
  if (cert.subject.rdns.length > 0) names.push({ type: 'dn', name: cert.subject });
  for (const email of cert.subject.emails) names.push({ type: 'email', value: email });
  names.push(...(cert.ext.subjectAltName?.names ?? []));
  return names;
}

export function checkNames(cert: ParsedCert, sets: readonly NameConstraintsExt[]): Failure | null {
  for (const name of subjectNames(cert)) {
    for (const set of sets) {
      for (const c of set.excluded) {
        const v = matches(name, c, true);
        if (v === 'match') return fail('name_constraints', `${name.type} name falls in an excluded subtree`);
        if (v !== 'no-match') return fail('name_constraints', `${name.type} name is ${v} under an excluded subtree`);
      }
      const permitted = set.permitted.filter((c) => c.type === name.type);
      if (permitted.length === 0) continue;
      const verdicts = permitted.map((c) => matches(name, c, false));
      if (verdicts.includes('invalid') || verdicts.includes('unsupported')) {
        return fail('name_constraints', `${name.type} name cannot be checked against permitted subtrees`);
      }
      if (!verdicts.includes('match')) return fail('name_constraints', `${name.type} name outside the permitted subtrees`);
    }
  }
  return null;
}
