import { BlockList, isIP } from 'node:net';
import { FleetkeyError } from '@fleetkey/protocol';

/**
 * The networks whose scrapers need no token (`metrics.allowNetworks`). A malformed range stops
 * the server at start with the key, the value and the expected form.
 */
export function networkAllowList(cidrs: readonly string[]): (ip: string) => boolean {
  if (cidrs.length === 0) return () => false;
  const list = new BlockList();
  for (const c of cidrs) {
    const m = /^([0-9a-fA-F:.]+)\/(\d{1,3})$/.exec(c);
    const family = m === null ? 0 : isIP(m[1]!);
    const bits = m === null ? -1 : Number(m[2]);
    if (family === 0 || bits > (family === 4 ? 32 : 128)) {
      throw new FleetkeyError('CONFIG_INVALID', { detail: `metrics.allowNetworks: ${JSON.stringify(c)} is not a CIDR range; write it like "10.20.0.0/16" or "127.0.0.1/32"` });
    }
    list.addSubnet(m![1]!, bits, family === 4 ? 'ipv4' : 'ipv6');
  }
  return (ip: string) => {
    // A dual-stack listener reports IPv4 peers as IPv4-mapped IPv6 (RFC 4291 §2.5.5.2).
    const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1];
    if (v4 !== undefined) return list.check(v4, 'ipv4');
    const family = isIP(ip);
    return family !== 0 && list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  };
}
