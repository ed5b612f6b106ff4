import type { StoredMessage } from './ingest.js';

export interface StreamFilter {
  readonly name?: string;
  readonly deviceId?: string;
  readonly kinds: ReadonlySet<string>;
}

type Listener = (m: StoredMessage) => void;

/**
 * Fan-out of stored messages to live subscribers (server-sent events). Only committed messages
 * are published, stamped with the identity the gateway authenticated, never what a payload says.
 * Subscribers are indexed by name and by device so one message costs a few map lookups.
 */
export class StreamHub {
  readonly #byName = new Map<string, Set<Listener>>();
  readonly #byDevice = new Map<string, Set<Listener>>();
  #published = 0;

  /** Messages published since start: the console's fleet-wide message-rate plot reads its deltas. */
  get published(): number {
    return this.#published;
  }

  subscribe(filter: StreamFilter, listener: (m: StoredMessage) => void): () => void {
    const wrapped: Listener = (m) => {
      if (filter.kinds.has(m.kind)) listener(m);
    };
    const index = filter.name !== undefined ? this.#byName : this.#byDevice;
    const key = filter.name ?? filter.deviceId ?? '';
    let set = index.get(key);
    if (set === undefined) index.set(key, (set = new Set()));
    set.add(wrapped);
    return () => {
      set.delete(wrapped);
      if (set.size === 0) index.delete(key);
    };
  }

  publish(m: StoredMessage): void {
    this.#published += 1;
    if (m.name !== null) this.#byName.get(m.name)?.forEach((l) => l(m));
    this.#byDevice.get(m.deviceId)?.forEach((l) => l(m));
  }
}
