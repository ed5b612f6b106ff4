/**
 * The PUBLISH rate limit, kept per DEVICE rather than per connection: a device cut off with
 * 0x96 that reconnects at once finds its allowance as it left it, so reconnecting cannot buy a
 * fresh burst. The gateway sees only this interface, so a store shared by a cluster of gateways
 * can replace the in-memory one.
 */
export interface PublishRateStore {
  /** Takes one PUBLISH from the device's allowance; false when it is spent. */
  take(deviceId: string, now: number): boolean;
  /** Forgets what no longer limits anyone; called from the gateway's sweep. */
  prune(now: number): void;
}

/**
 * Token bucket per device id (burst = one second's worth), refilled from the clock, no timer.
 * Only authenticated device ids reach it, and a bucket that has refilled is dropped, so it holds
 * at most the devices that published within the last second.
 */
export class MemoryPublishRate implements PublishRateStore {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly perSecond: number) {}

  take(deviceId: string, now: number): boolean {
    const rate = this.perSecond;
    let b = this.#buckets.get(deviceId);
    if (b === undefined) {
      b = { tokens: rate, at: now };
      this.#buckets.set(deviceId, b);
    } else {
      b.tokens = Math.min(rate, b.tokens + (Math.max(0, now - b.at) * rate) / 1000);
      b.at = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** The allowance the device has at `now` without taking from it (full when it has no bucket). */
  peek(deviceId: string, now: number): number {
    const b = this.#buckets.get(deviceId);
    return b === undefined ? this.perSecond : Math.min(this.perSecond, b.tokens + (Math.max(0, now - b.at) * this.perSecond) / 1000);
  }

  /** Sets the device's allowance (a cluster node hands a moving device's bucket to the next one). */
  set(deviceId: string, tokens: number, now: number): void {
    this.#buckets.set(deviceId, { tokens: Math.max(0, Math.min(this.perSecond, tokens)), at: now });
  }

  prune(now: number): void {
    const rate = this.perSecond;
    for (const [id, b] of this.#buckets) if (b.tokens + ((now - b.at) * rate) / 1000 >= rate) this.#buckets.delete(id);
  }

  get size(): number {
    return this.#buckets.size;
  }
}
