import type { MqttClient } from 'mqtt';

/** How one QoS 1 PUBLISH ended. */
export type Outcome = { kind: 'acked' } | { kind: 'refused'; code: number } | { kind: 'lost' };

/**
 * The QoS 1 PUBLISHes of one network connection. At most `limit` (the server's Receive Maximum)
 * are unacknowledged at once [MQTT-3.3.4-7]: MQTT.js does not enforce it, and the gateway answers
 * an excess with DISCONNECT 0x93. The rest wait their turn here, in order.
 */
export class PublishWindow {
  #active = 0;
  #closed = false;
  readonly #waiting: (() => void)[] = [];
  readonly #open = new Set<(o: Outcome) => void>();

  constructor(
    readonly client: MqttClient,
    readonly limit: number,
  ) {}

  /** PUBLISHes sent and not yet acknowledged, plus those waiting for room. */
  get size(): number {
    return this.#open.size;
  }

  /** Settles with the PUBACK, or `lost` if the connection goes first. */
  publish(topic: string, payload: Buffer): Promise<Outcome> {
    if (this.#closed) return Promise.resolve({ kind: 'lost' });
    return new Promise<Outcome>((resolve) => {
      let started = false;
      const settle = (o: Outcome): void => {
        if (!this.#open.delete(settle)) return; // already settled (a late callback after fail())
        if (started) this.#active--;
        resolve(o);
        this.#next();
      };
      this.#open.add(settle);
      const start = (): void => {
        if (!this.#open.has(settle)) return;
        started = true;
        this.#active++;
        this.client.publish(topic, payload, { qos: 1 }, (err) => {
          if (err === undefined || err === null) return settle({ kind: 'acked' });
          const code = (err as { code?: unknown }).code;
          // MQTT 5 PUBACK reason ≥ 0x80 [MQTT 5.0 §3.4.2.1]: the gateway will never take this message.
          settle(typeof code === 'number' && code >= 0x80 ? { kind: 'refused', code } : { kind: 'lost' });
        });
      };
      if (this.#active < this.limit) start();
      else this.#waiting.push(start);
    });
  }

  /** The connection is gone: everything open is lost (its senders buffer it). */
  fail(): void {
    this.#closed = true;
    this.#waiting.length = 0;
    for (const settle of [...this.#open]) settle({ kind: 'lost' });
  }

  #next(): void {
    while (!this.#closed && this.#active < this.limit && this.#waiting.length > 0) this.#waiting.shift()!();
  }
}
