/**
 * A packet-level MQTT client over mTLS for what MQTT.js will not do on purpose: send garbage,
 * skip CONNECT, never read, exceed limits. Decodes what the gateway sends with mqtt-packet.
 */
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import * as mqttPacket from 'mqtt-packet';
import type { Packet } from 'mqtt-packet';
import type { Identity, Pki } from './pki.js';

export class RawClient {
  readonly packets: Packet[] = [];
  closed = false;
  readonly closedAt: Promise<void>;
  private readonly parser: ReturnType<typeof mqttPacket.parser>;
  private waiters: (() => void)[] = [];

  private constructor(
    readonly socket: TLSSocket,
    version: 4 | 5,
  ) {
    this.parser = mqttPacket.parser({ protocolVersion: version });
    this.parser.on('packet', (p: Packet) => {
      this.packets.push(p);
      this.wake();
    });
    this.parser.on('error', () => undefined);
    socket.on('data', (d: Buffer) => this.parser.parse(d));
    socket.on('error', () => undefined);
    this.closedAt = new Promise((resolve) =>
      socket.on('close', () => {
        this.closed = true;
        this.wake();
        resolve();
      }),
    );
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static async open(port: number, pki: Pki, identity: Identity, version: 4 | 5 = 5): Promise<RawClient> {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: pki.ca, cert: identity.cert, key: identity.key, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', () => resolve());
      socket.once('error', reject);
    });
    return new RawClient(socket, version);
  }

  send(p: Packet | Buffer, version: 4 | 5 = 5): boolean {
    const buf = Buffer.isBuffer(p) ? p : mqttPacket.generate(p, { protocolVersion: version });
    return this.socket.write(buf);
  }

  /** Waits for the first packet (from `from` on) matching cmd; undefined on close or timeout. */
  async next(cmd: Packet['cmd'], timeoutMs = 2000, from = 0): Promise<Packet | undefined> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const found = this.packets.slice(from).find((p) => p.cmd === cmd);
      if (found !== undefined) return found;
      if (this.closed || Date.now() > end) return undefined;
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, end - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  async waitClosed(timeoutMs = 2000): Promise<boolean> {
    await Promise.race([this.closedAt, new Promise((r) => setTimeout(r, timeoutMs))]);
    return this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export function connectPacket(clientId: string, version: 4 | 5, extra: Partial<mqttPacket.IConnectPacket> = {}): mqttPacket.IConnectPacket {
  return { cmd: 'connect', protocolId: 'MQTT', protocolVersion: version, clientId, clean: true, keepalive: 30, ...extra };
}
