import type { EventType } from '@fleetkey/protocol';

export interface FleetEvent {
  readonly id: string;
  readonly type: EventType;
  readonly subject: string;
  readonly payload: Record<string, unknown>;
  readonly createdAt: number;
  /** Webhook deliveries written with the event (0 when no webhook subscribes to its type). */
  readonly deliveries: number;
}

export type EventListener = (event: FleetEvent) => void;

/**
 * In-process fan-out of committed events (the gateway, the webhook dispatcher). Only events
 * whose transaction committed are published. Listener errors are isolated: one bad listener
 * must not stop revocation reaching the others.
 */
export class EventBus {
  readonly #listeners = new Set<EventListener>();
  readonly #onError: (e: unknown) => void;

  constructor(onError: (e: unknown) => void) {
    this.#onError = onError;
  }

  subscribe(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  publish(event: FleetEvent): void {
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch (e) {
        this.#onError(e);
      }
    }
  }
}
