import type { GeneralName } from './general-names.js';
import type { PeerName } from './types.js';

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/**
 * Preferred name syntax (RFC 1034 §3.5, RFC 5280 §4.2.1.6), ASCII only. Underscores are
 * tolerated because deployed certificates carry them; wildcards only as a whole leftmost label.
 */
export function isValidDnsName(name: string, allowWildcard = false): boolean {
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.toLowerCase().split('.');
  return labels.every((label, i) => LABEL.test(label) || (allowWildcard && i === 0 && label === '*' && labels.length > 1));
}

/** RFC 5321 §4.1.2 Mailbox, as far as certificates need it: one "@", a non-empty local part, a domain. */
export function isValidMailbox(s: string): boolean {
  const at = s.lastIndexOf('@');
  return at > 0 && s.indexOf('@') === at && !/[\s\x00-\x1f\x7f]/.test(s) && isValidDnsName(s.slice(at + 1));
}

const V4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** Parses a textual IPv4 or IPv6 address (RFC 4291 §2.2) to its 4 or 16 network-order bytes. */
export function parseIp(text: string): Buffer | undefined {
  const m4 = V4.exec(text);
  if (m4) return Buffer.from(m4.slice(1, 5).map(Number));
  if (!text.includes(':')) return undefined;
  let s = text;
  const lastColon = s.lastIndexOf(':');
  const maybeV4 = s.slice(lastColon + 1);
  if (maybeV4.includes('.')) {
    // RFC 4291 §2.2 form 3: the low 32 bits written as a dotted quad.
    const v4 = V4.test(maybeV4) ? parseIp(maybeV4) : undefined;
    if (!v4) return undefined;
    s = `${s.slice(0, lastColon + 1)}${v4.readUInt16BE(0).toString(16)}:${v4.readUInt16BE(2).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string): number[] | undefined => {
    if (part === '') return [];
    const groups = part.split(':');
    if (!groups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
    return groups.map((g) => parseInt(g, 16));
  };
  const head = parse(halves[0] as string);
  const rest = halves.length === 2 ? parse(halves[1] as string) : [];
  if (!head || !rest) return undefined;
  const known = head.length + rest.length;
  let groups: number[];
  if (halves.length === 2) {
    if (known > 7) return undefined;
    groups = [...head, ...new Array<number>(8 - known).fill(0), ...rest];
  } else {
    if (known !== 8) return undefined;
    groups = head;
  }
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** RFC 6125 §6.4.3 wildcard rules, as the CA/B Forum narrows them. */
function dnsMatches(presented: string, reference: string): boolean {
  const p = presented.toLowerCase();
  if (!isValidDnsName(p, true)) return false;
  if (!p.startsWith('*.')) return p === reference;
  const base = p.slice(2);
  // A wildcard must sit over at least two labels ("*.com" is refused); without a public-suffix
  // list this is the conservative approximation browsers use as a floor.
  if (base.split('.').length < 2) return false;
  const dot = reference.indexOf('.');
  return dot > 0 && reference.slice(dot + 1) === base;
}

/**
 * Whether the leaf's subjectAltName covers the peer name. The subject CN is never consulted
 * (RFC 6125 §6.4.4 allows it only without a SAN; CABF requires the SAN).
 */
export function matchesPeerName(san: readonly GeneralName[] | undefined, peer: PeerName): boolean {
  if (!san) return false;
  if (peer.kind === 'ip') {
    const ip = parseIp(peer.value);
    return ip !== undefined && san.some((n) => n.type === 'ip' && n.bytes.equals(ip));
  }
  let reference = peer.value.toLowerCase();
  if (reference.endsWith('.')) reference = reference.slice(0, -1);
  if (!isValidDnsName(reference)) return false;
  return san.some((n) => n.type === 'dns' && dnsMatches(n.value, reference));
}
