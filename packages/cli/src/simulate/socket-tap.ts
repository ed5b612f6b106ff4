import { createRequire } from 'node:module';
import type { TLSSocket } from 'node:tls';

/** The CommonJS `tls` module object, the one MQTT.js calls `connect` on. */
const tls = createRequire(import.meta.url)('node:tls') as { connect: (...args: unknown[]) => TLSSocket };

/** What the tap calls for each MQTT connection attempt; `prepare` may return replacement options. */
export interface TlsTapHooks {
  prepare?(clientId: string, options: Record<string, unknown>): Record<string, unknown> | undefined;
  onSocket(clientId: string, socket: TLSSocket): void;
}

let installed: { original: typeof tls.connect; hooks: TlsTapHooks } | undefined;

/**
 * Hands `hooks` every TLS connection MQTT.js opens, with the MQTT client id it was opened for;
 * returns the function that removes the tap.
 *
 * Why a wrapper around `tls.connect`: a reconnect storm has to cut the devices' links the way a
 * network outage does (the socket dies under the client, no DISCONNECT is sent), and the device
 * SDK rightly does not hand out its MQTT client. MQTT.js (CommonJS) looks `tls.connect` up on the
 * module at every attempt and passes its client options, `clientId` included, so the simulator
 * sees each attempt's socket without touching the SDK. Node has no diagnostics channel for
 * `tls.connect` (`net.client.socket` covers `net.connect` only). Connections opened without an MQTT
 * client id (the SDK's provisioning HTTPS) pass through untouched.
 */
export function tapTlsSockets(hooks: TlsTapHooks): () => void {
  if (installed !== undefined) throw new Error('a TLS socket tap is already installed');
  const original = tls.connect;
  installed = { original, hooks };
  tls.connect = function (this: unknown, ...args: unknown[]): TLSSocket {
    const opts = args[0];
    const clientId = typeof opts === 'object' && opts !== null ? (opts as { clientId?: unknown }).clientId : undefined;
    const h = installed?.hooks;
    if (typeof clientId !== 'string' || h === undefined) return original.apply(this, args);
    const replaced = h.prepare?.(clientId, opts as Record<string, unknown>);
    const socket = original.apply(this, replaced === undefined ? args : [replaced, ...args.slice(1)]);
    h.onSocket(clientId, socket);
    return socket;
  };
  return () => {
    if (installed?.original === original) {
      tls.connect = original;
      installed = undefined;
    }
  };
}

/**
 * The MQTT reason code of a refused CONNACK at the start of `chunk`, or undefined when the chunk
 * is not a CONNACK or the CONNACK accepts. CONNACK = 0x20, Remaining Length (variable byte
 * integer), Acknowledge Flags, then the v5 Reason Code [MQTT 5.0 §3.2.2.2] or the v3.1.1 Return
 * Code [MQTT-3.2.2.3] in the same place; failures are ≥ 0x80 (v5) or 1..5 (v3.1.1).
 */
export function refusedConnackCode(chunk: Buffer): number | undefined {
  if (chunk[0] !== 0x20) return undefined;
  let i = 1;
  while (i < 5 && ((chunk[i] ?? 0) & 0x80) !== 0) i++;
  const code = chunk[i + 2];
  return code === undefined || code === 0 ? undefined : code;
}
