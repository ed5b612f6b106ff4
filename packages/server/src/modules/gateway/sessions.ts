/**
 * Session persistence, deliberately minimal. What MQTT calls session state [MQTT-4.1] is, for a
 * Fleetkey device, only (a) its command subscription and (b) which commands were sent but not
 * acknowledged. Pending commands themselves live in the store (the pendingCommands hook), so they
 * survive a gateway restart; this map keeps (a) and (b) in memory for the session's lifetime:
 *  - v3.1.1: CleanSession=0 keeps the session until the gateway restarts; CleanSession=1 discards
 *    it at CONNECT and at disconnect [MQTT-3.1.2-6].
 *  - v5: Clean Start discards it at CONNECT [MQTT-3.1.2-4]; Session Expiry Interval (capped at
 *    MAX_EXPIRY_SECONDS) decides how long it outlives the connection [MQTT-3.1.2-23].
 * A gateway restart loses it: the device then sees Session Present 0 and resubscribes, which is
 * exactly what the flag exists for [MQTT-3.2.2-3].
 */
export const MAX_EXPIRY_SECONDS = 7 * 24 * 3600;

export interface Session {
  /** Granted QoS of the command subscription, or -1 when not subscribed. */
  subscribedQos: -1 | 0 | 1;
  /** Which of the two command filters are held (bit 1: `+`, bit 2: `#`). */
  filters: number;
  /** Issue 13: whether the device holds its attestation request filter. */
  attestationRequests: boolean;
  /** Commands transmitted and not yet acknowledged: re-sent with DUP=1 on resume [MQTT-4.4.0-1]. */
  unacked: Set<string> | undefined;
  /** Seconds the session outlives its connection; 0 ends it with the connection. */
  expirySeconds: number;
  /** When a disconnected session expires (ms since epoch); Infinity while connected. */
  expiresAt: number;
}

export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  /** Opens (or resumes) the session of a device at CONNECT; returns it and Session Present. */
  open(deviceId: string, cleanStart: boolean, expirySeconds: number, now: number): { session: Session; present: boolean } {
    const existing = this.sessions.get(deviceId);
    if (existing !== undefined && !cleanStart && existing.expiresAt > now) {
      existing.expirySeconds = Math.min(expirySeconds, MAX_EXPIRY_SECONDS);
      existing.expiresAt = Number.POSITIVE_INFINITY;
      return { session: existing, present: true };
    }
    const session: Session = {
      subscribedQos: -1,
      filters: 0,
      attestationRequests: false,
      unacked: undefined,
      expirySeconds: Math.min(expirySeconds, MAX_EXPIRY_SECONDS),
      expiresAt: Number.POSITIVE_INFINITY,
    };
    this.sessions.set(deviceId, session);
    return { session, present: false };
  }

  /** The connection holding `session` ended; keep it for its expiry or drop it. */
  release(deviceId: string, session: Session, now: number): void {
    if (this.sessions.get(deviceId) !== session) return; // a newer connection owns the device
    if (session.expirySeconds === 0) this.sessions.delete(deviceId);
    else session.expiresAt = now + session.expirySeconds * 1000;
  }

  prune(now: number): void {
    for (const [id, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }
}
