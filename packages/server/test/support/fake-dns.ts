import type { Resolver } from '@fleetkey/server';

/**
 * An in-process resolver (`CreateOptions.resolveHost`): a table per name, answers consumed in
 * order (the last one repeats), so tests of outbound requests never ask DNS.
 */
export function fakeDns(table: Record<string, string[][]>): Resolver & { calls: string[] } {
  const calls: string[] = [];
  const answers = new Map(Object.entries(table).map(([k, v]) => [k, [...v]]));
  const r = async (host: string) => {
    calls.push(host);
    const queue = answers.get(host);
    if (queue === undefined || queue.length === 0) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    const next = queue.length > 1 ? queue.shift()! : queue[0]!;
    return next.map((address) => ({ address, family: address.includes(':') ? (6 as const) : (4 as const) }));
  };
  return Object.assign(r, { calls });
}
