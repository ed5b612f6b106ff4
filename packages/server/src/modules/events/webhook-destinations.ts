import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { FleetkeyError } from '@fleetkey/protocol';
import { parseWebhookUrl } from './webhook-url.js';

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/** Name → addresses. The system resolver by default; tests answer in-process instead of DNS. */
export type Resolver = (hostname: string) => Promise<readonly ResolvedAddress[]>;

export const systemResolver: Resolver = async (hostname) =>
  (await lookup(hostname, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));

type Range = readonly [prefix: string, bits: number, why: string];

// IANA IPv4 Special-Purpose Address Registry (RFC 6890 and its updates), plus what a cloud puts
// its metadata service on. Each range is refused unless the operator allowlists it.
const V4: readonly Range[] = [
  ['0.0.0.0', 8, '"this network" / unspecified (RFC 791, RFC 1122 §3.2.1.3)'],
  ['10.0.0.0', 8, 'private (RFC 1918)'],
  ['100.64.0.0', 10, 'shared address space / CGNAT (RFC 6598)'],
  ['127.0.0.0', 8, 'loopback (RFC 1122 §3.2.1.3)'],
  ['169.254.0.0', 16, 'link-local, home of cloud metadata services (RFC 3927)'],
  ['172.16.0.0', 12, 'private (RFC 1918)'],
  ['192.0.0.0', 24, 'IETF protocol assignments (RFC 6890)'],
  ['192.0.2.0', 24, 'documentation TEST-NET-1 (RFC 5737)'],
  ['192.31.196.0', 24, 'AS112 (RFC 7535)'],
  ['192.52.193.0', 24, 'AMT (RFC 7450)'],
  ['192.88.99.0', 24, '6to4 relay anycast (RFC 7526)'],
  ['192.168.0.0', 16, 'private (RFC 1918)'],
  ['192.175.48.0', 24, 'AS112 direct delegation (RFC 7534)'],
  ['198.18.0.0', 15, 'benchmarking (RFC 2544)'],
  ['198.51.100.0', 24, 'documentation TEST-NET-2 (RFC 5737)'],
  ['203.0.113.0', 24, 'documentation TEST-NET-3 (RFC 5737)'],
  ['224.0.0.0', 4, 'multicast (RFC 5771)'],
  ['240.0.0.0', 4, 'reserved, and the limited broadcast 255.255.255.255 (RFC 1112 §4, RFC 919)'],
];

// IANA IPv6 Special-Purpose Address Registry. Everything outside 2000::/3 (global unicast, RFC
// 4291 §2.4) is refused too, which covers ::, ::1, 100::/64, fc00::/7, fe80::/10, fec0::/10,
// ff00::/8 and whatever IANA assigns there later.
const V6: readonly Range[] = [
  ['2001::', 23, 'IETF protocol assignments, Teredo, benchmarking, ORCHID (RFC 2928, RFC 4380, RFC 5180)'],
  ['2001:db8::', 32, 'documentation (RFC 3849)'],
  ['3fff::', 20, 'documentation (RFC 9637)'],
  ['5f00::', 16, 'SRv6 SIDs (RFC 9602)'],
];

const NAMED_V6: readonly Range[] = [
  ['::', 128, 'unspecified (RFC 4291 §2.5.2)'],
  ['::1', 128, 'loopback (RFC 4291 §2.5.3)'],
  ['fc00::', 7, 'unique-local (RFC 4193)'],
  ['fe80::', 10, 'link-local (RFC 4291 §2.5.6)'],
  ['fec0::', 10, 'site-local (RFC 3879)'],
  ['ff00::', 8, 'multicast (RFC 4291 §2.7)'],
  ['64:ff9b:1::', 48, 'local-use NAT64 (RFC 8215)'],
];

const listOf = (ranges: readonly Range[], type: 'ipv4' | 'ipv6') =>
  ranges.map(([prefix, bits, why]) => {
    const b = new BlockList();
    b.addSubnet(prefix, bits, type);
    return { b, why: `${prefix}/${bits} ${why}` };
  });
const BLOCKED_V4 = listOf(V4, 'ipv4');
const BLOCKED_V6 = [...listOf(NAMED_V6, 'ipv6'), ...listOf(V6, 'ipv6')];
const GLOBAL_UNICAST_V6 = listOf([['2000::', 3, '']], 'ipv6')[0]!.b;

/** The eight 16-bit groups of an IPv6 address (already known to be valid), with any zone dropped. */
function groups(ip: string): number[] {
  let s = ip.split('%')[0]!;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (dotted !== null) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    s = `${s.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = s.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? [] : Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => Number.parseInt(g, 16));
}

const v4 = (hi: number, lo: number): string => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;

/**
 * The IPv4 address an IPv6 address carries, for the forms that reach an IPv4 host: IPv4-mapped
 * ::ffff:0:0/96 (RFC 4291 §2.5.5.2), IPv4-compatible ::/96 (§2.5.5.1, deprecated), NAT64
 * 64:ff9b::/96 (RFC 6052) and 6to4 2002::/16 (RFC 3056). `[::ffff:169.254.169.254]` is the
 * metadata service whatever it is written as.
 */
function embeddedV4(ip: string): string | null {
  const g = groups(ip);
  const zeros = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zeros(5) && g[5] === 0xffff) return v4(g[6]!, g[7]!);
  if (zeros(6) && !(g[6] === 0 && g[7]! <= 1)) return v4(g[6]!, g[7]!); // not :: or ::1
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return v4(g[6]!, g[7]!);
  if (g[0] === 0x2002) return v4(g[1]!, g[2]!);
  return null;
}

function allowList(cidrs: readonly string[]): BlockList {
  const b = new BlockList();
  for (const c of cidrs) {
    const m = /^([0-9a-fA-F:.]+)\/(\d{1,3})$/.exec(c);
    const family = m === null ? 0 : isIP(m[1]!);
    const bits = m === null ? -1 : Number(m[2]);
    if (family === 0 || bits > (family === 4 ? 32 : 128)) {
      throw new FleetkeyError('CONFIG_INVALID', { detail: `webhooks.allowPrivateDestinations: ${JSON.stringify(c)} is not a CIDR range such as "127.0.0.1/32"` });
    }
    b.addSubnet(m![1]!, bits, family === 4 ? 'ipv4' : 'ipv6');
  }
  return b;
}

export interface AddressPolicy {
  /** CIDR ranges the operator lets webhooks reach although they are internal. */
  readonly allow: readonly string[] | BlockList;
}

/**
 * Why `ip` may not be a webhook destination, or null when it may. Internal, reserved and
 * special-purpose ranges are refused unless the allowlist holds the address.
 */
export function checkDestinationAddress(ip: string, policy: AddressPolicy): string | null {
  const allow = policy.allow instanceof BlockList ? policy.allow : allowList(policy.allow);
  const family = isIP(ip);
  if (family === 4) {
    if (allow.check(ip, 'ipv4')) return null;
    const hit = BLOCKED_V4.find((r) => r.b.check(ip, 'ipv4'));
    return hit === undefined ? null : `${ip} is ${hit.why}`;
  }
  if (family !== 6) return `${ip} is not an IP address`;
  if (allow.check(ip, 'ipv6')) return null;
  const named = BLOCKED_V6.find((r) => r.b.check(ip, 'ipv6'));
  if (named !== undefined) return `${ip} is ${named.why}`;
  const inner = embeddedV4(ip);
  if (inner !== null) {
    const why = checkDestinationAddress(inner, { allow });
    return why === null ? null : `${ip} embeds ${why}`;
  }
  return GLOBAL_UNICAST_V6.check(ip, 'ipv6') ? null : `${ip} is outside global unicast 2000::/3 (RFC 4291 §2.4)`;
}

/** A URL that passed every check, and the one address the request must connect to. */
export interface Destination {
  readonly url: URL;
  readonly address: ResolvedAddress;
}

export interface DestinationOptions {
  readonly allowInsecureHttp: boolean;
  readonly allowPrivateDestinations: readonly string[];
  readonly resolve?: Resolver | undefined;
  /** Bound on a name lookup, so a slow resolver cannot hold a delivery or an API call. */
  readonly resolveTimeoutMs?: number;
}

/**
 * What the server calls a URL for: a webhook or decision webhook (https unless the operator allows
 * http), or a CRL distribution point (plain http is the norm: CRLs are signed, RFC 5280
 * §4.2.1.13). Each refuses with its own catalogue code.
 */
export type OutboundUse = 'webhook' | 'crl';

/**
 * Where the server may send requests on an operator's or an outside party's say-so: webhooks,
 * decision webhooks (issue 11 item 11) and CRL fetches (issue 10). A URL is checked when it is
 * registered and again before every request; the request then connects to the exact address
 * checked (webhook-request.ts), so a name that answers differently the second time (DNS
 * rebinding) cannot steer the request inside. One allowlist for all uses.
 */
export class OutboundDestinations {
  readonly #allow: BlockList;
  readonly #resolve: Resolver;
  readonly #ownPorts = new Set<number>();

  constructor(private readonly options: DestinationOptions) {
    this.#allow = allowList(options.allowPrivateDestinations);
    this.#resolve = options.resolve ?? systemResolver;
  }

  /** Marks a port this server listens on: no outbound request may call the server itself, allowlist or not. */
  protectOwnPort(port: number): void {
    this.#ownPorts.add(port);
  }

  /**
   * Parses, resolves and checks `raw`. Every address the name resolves to must be allowed (a
   * resolver may answer a public and a private address together); the first one is used.
   * @throws FleetkeyError for `webhook`: WEBHOOK_URL_REFUSED (malformed, scheme, no such name) |
   *   WEBHOOK_DESTINATION_REFUSED; for `crl`: ENROLLMENT_CRL_URL_REFUSED
   */
  async check(raw: string, use: OutboundUse = 'webhook'): Promise<Destination> {
    if (use === 'webhook') return this.#check(raw, this.options.allowInsecureHttp);
    try {
      return await this.#check(raw, true);
    } catch (e) {
      if (!(e instanceof FleetkeyError)) throw e;
      throw new FleetkeyError('ENROLLMENT_CRL_URL_REFUSED', { detail: e.detail ?? e.code });
    }
  }

  async #check(raw: string, allowHttp: boolean): Promise<Destination> {
    const url = parseWebhookUrl(raw, allowHttp);
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname.replace(/\.$/, '');
    const addresses = isIP(host) !== 0 ? [{ address: host, family: isIP(host) === 6 ? 6 : 4 } as const] : await this.#lookup(host);
    const port = Number(url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : url.port);
    for (const a of addresses) {
      const why = checkDestinationAddress(a.address, { allow: this.#allow });
      if (why !== null) throw new FleetkeyError('WEBHOOK_DESTINATION_REFUSED', { detail: `${url.host}: ${why}` });
      if (this.#ownPorts.has(port) && isThisHost(a.address)) {
        throw new FleetkeyError('WEBHOOK_DESTINATION_REFUSED', { detail: `${url.host}: ${a.address} port ${port} is this server` });
      }
    }
    return { url, address: addresses[0]! };
  }

  async #lookup(host: string): Promise<readonly ResolvedAddress[]> {
    // RFC 6761 §6.3: localhost and *.localhost are loopback, whatever a DNS server says.
    if (host === 'localhost' || host.endsWith('.localhost')) return [{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }];
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('lookup timed out')), this.options.resolveTimeoutMs ?? 5000);
    });
    try {
      const found = await Promise.race([this.#resolve(host), timeout]);
      if (found.length === 0) throw new Error('no address');
      return found;
    } catch (e) {
      throw new FleetkeyError('WEBHOOK_URL_REFUSED', { detail: `${host} does not resolve: ${e instanceof Error ? e.message : 'error'}` });
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Loopback, unspecified, or one of this machine's interface addresses. */
function isThisHost(ip: string): boolean {
  const inner = isIP(ip) === 6 ? (embeddedV4(ip) ?? ip) : ip;
  if (/^127\./.test(inner) || inner === '0.0.0.0' || inner === '::1' || inner === '::') return true;
  return Object.values(networkInterfaces()).some((list) => list?.some((i) => i.address === inner) === true);
}
