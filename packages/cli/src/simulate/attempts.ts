import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { checkServerIdentity, createSecureContext, type PeerCertificate, type SecureContext, type SecureContextOptions, type TLSSocket } from 'node:tls';
import { refusedConnackCode } from './socket-tap.js';

/** What the gate keeps per device about its current connection attempt. */
export interface AttemptState {
  /** The socket of the current (or last) attempt, seen through the TLS tap. */
  socket: TLSSocket | undefined;
  /** performance.now() when that attempt was let onto the network (its TCP connect began). */
  attemptAt: number;
  /** Whether that attempt got its CONNACK. */
  attemptOk: boolean;
  /** The code of a refused CONNACK on that attempt. */
  refusedCode: number | undefined;
  /** The attempt was ended by the gate's CONNACK deadline. */
  timedOut: boolean;
  /** The gate's stall counter when the attempt was admitted (see AttemptGate.#expire). */
  stallAtAdmission: number;
  /** The TLS context built from the device's certificate, kept across its reconnects. */
  tls: { cert: string; context: SecureContext } | undefined;
}

const SWEEP_MS = 250;

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A host name that is never resolved: the gate's lookup answers for it (and no SNI is derived from it). */
const DEFERRED_HOST = 'fleetkey-simulate.invalid';

/**
 * Admission for connection attempts, so that one process playing thousands of devices measures
 * the server and not itself.
 *
 * A real device spends its own CPU on its handshake; the simulator spends one core on all of them
 * (~3 ms each: the SDK's credentials, MQTT.js, TLS). Unbounded, a storm of 10,000 devices queues
 * seconds of work in the simulator, and every attempt's CONNACK deadline expires inside the
 * simulator before the server has been asked. So each attempt's TCP connect is held back (through
 * the connection's own DNS lookup, the one asynchronous step before it) until fewer than `limit`
 * attempts are on the network, and the device's 10 s CONNACK deadline runs from there, enforced
 * by one sweep for all attempts. The server still sees up to `limit` handshakes arriving at once.
 *
 * The TLS context of a device is also built once per certificate instead of per attempt (~2 ms of
 * PEM parsing); the gateway sees the same full handshake either way.
 */
export class AttemptGate<D extends AttemptState> {
  readonly #limit: number;
  readonly #deadlineMs: number;
  readonly #waiting: { d: D; socket: TLSSocket | undefined; go: () => void }[] = [];
  #head = 0;
  readonly #onNetwork = new Set<D>();
  readonly #sweep: NodeJS.Timeout;
  #lastSweep = performance.now();
  /** Milliseconds the simulator's event loop was stalled, summed: not counted against deadlines. */
  #stalledMs = 0;

  constructor(limit: number, deadlineMs: number) {
    this.#limit = limit;
    this.#deadlineMs = deadlineMs;
    this.#sweep = setInterval(() => this.#expire(), SWEEP_MS);
    this.#sweep.unref();
  }

  /** Replacement options for MQTT.js's `tls.connect`: the kept context and the deferred connect. */
  prepare(d: D, opts: Record<string, unknown>): Record<string, unknown> | undefined {
    const host = opts['host'];
    if (typeof host !== 'string' || opts['socket'] !== undefined || opts['lookup'] !== undefined) return undefined;
    const out: Record<string, unknown> = { ...opts };
    const cert = opts['cert'];
    if (typeof cert === 'string' && opts['key'] !== undefined && opts['secureContext'] === undefined) {
      if (d.tls?.cert !== cert) d.tls = { cert, context: createSecureContext(opts as SecureContextOptions) };
      out['secureContext'] = d.tls.context;
    }
    // Verification stays what it was: the server's certificate is checked against the real host.
    out['checkServerIdentity'] = (_h: string, c: PeerCertificate) => checkServerIdentity(host, c);
    out['host'] = DEFERRED_HOST;
    out['autoSelectFamily'] = false;
    out['lookup'] = (_name: string, o: { family?: number }, cb: LookupCallback) => {
      const go = (): void => {
        if (isIP(host) !== 0) cb(null, host, isIP(host));
        else dnsLookup(host, { family: o.family ?? 0 }, cb);
      };
      // The lookup runs inside tls.connect, before the tap has seen the new socket.
      process.nextTick(() => {
        this.#waiting.push({ d, socket: d.socket, go });
        this.#pump();
      });
    };
    return out;
  }

  /** The socket MQTT.js opened for `d`'s attempt (its connect waits for admission). */
  opened(d: D, socket: TLSSocket): void {
    d.socket = socket;
    d.attemptOk = false;
    d.refusedCode = undefined;
    d.timedOut = false;
    // The first bytes the gateway sends are the CONNACK: a refusal's reason code is read there.
    socket.once('data', (chunk: Buffer) => (d.refusedCode = refusedConnackCode(chunk)));
    socket.once('close', () => this.#release(d, socket));
  }

  /** `d`'s attempt got its CONNACK. */
  connected(d: D): void {
    d.attemptOk = true;
    if (d.socket !== undefined) this.#release(d, d.socket);
  }

  get waiting(): number {
    return this.#waiting.length - this.#head;
  }

  close(): void {
    clearInterval(this.#sweep);
  }

  #release(d: D, socket: TLSSocket): void {
    if (d.socket === socket && this.#onNetwork.delete(d)) this.#pump();
  }

  #pump(): void {
    while (this.#onNetwork.size < this.#limit && this.#head < this.#waiting.length) {
      const w = this.#waiting[this.#head++];
      if (w === undefined) break;
      // An attempt given up while it waited (the device closed) never reaches the network.
      if (w.socket === undefined || w.socket.destroyed || w.d.socket !== w.socket) continue;
      this.#onNetwork.add(w.d);
      w.d.attemptAt = performance.now();
      w.d.stallAtAdmission = this.#stalledMs;
      w.go();
    }
    if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
      this.#waiting.splice(0, this.#head);
      this.#head = 0;
    }
  }

  /**
   * Ends attempts past their deadline. Time the simulator's own event loop was stalled (this
   * sweep running late) is not counted: a CONNACK may be sitting unread in a socket the stalled
   * simulator has not got to, and a real device would have read it on its own CPU.
   */
  #expire(): void {
    const now = performance.now();
    this.#stalledMs += Math.max(0, now - this.#lastSweep - SWEEP_MS);
    this.#lastSweep = now;
    for (const d of this.#onNetwork) {
      if (now - d.attemptAt - (this.#stalledMs - d.stallAtAdmission) < this.#deadlineMs) continue;
      d.timedOut = true;
      d.socket?.destroy();
    }
  }
}
