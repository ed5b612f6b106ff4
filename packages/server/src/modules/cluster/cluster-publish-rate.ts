import { MemoryPublishRate, type PublishRateStore } from '../gateway/publish-rate.js';

/**
 * The per-device PUBLISH allowance across nodes (issue 15). Each node keeps the token buckets of
 * the devices it serves (MemoryPublishRate); when a device moves to another node (a takeover
 * across nodes), the node it left sends its bucket over the bus and the new node keeps the lower
 * of the two allowances. So moving between nodes cannot buy a fresh burst; what remains is the
 * bus hop after the move (two messages, milliseconds), during which the new node allows at most
 * one burst — the same as one reconnect costs a device on a single node.
 */
export class ClusterPublishRate implements PublishRateStore {
  readonly #local: MemoryPublishRate;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly perSecond: number) {
    this.#local = new MemoryPublishRate(perSecond);
  }

  take(deviceId: string, now: number): boolean {
    const handed = this.#buckets.get(deviceId);
    if (handed !== undefined) {
      // A bucket from the node the device left: spend it first, refilled by the clock.
      this.#buckets.delete(deviceId);
      const tokens = Math.min(this.perSecond, handed.tokens + (Math.max(0, now - handed.at) * this.perSecond) / 1000);
      this.#local.set(deviceId, tokens, now);
    }
    return this.#local.take(deviceId, now);
  }

  prune(now: number): void {
    this.#local.prune(now);
    for (const [id, b] of this.#buckets) if (now - b.at > 1000) this.#buckets.delete(id);
  }

  /** What this node's bucket of the device holds now (a full bucket when it has none). */
  export(deviceId: string, now: number): { tokens: number; at: number } {
    return { tokens: this.#local.peek(deviceId, now), at: now };
  }

  /** Another node's bucket of the device: the lower allowance wins. */
  merge(deviceId: string, tokens: number, at: number): void {
    if (!Number.isFinite(tokens) || tokens < 0) return;
    const mine = this.#local.peek(deviceId, at);
    if (tokens < mine) this.#buckets.set(deviceId, { tokens, at });
  }
}
