import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const NATS_SERVER = process.env['FLEETKEY_NATS_SERVER'] ?? '/usr/sbin/nats-server';

/** A port nobody listens on now (the kernel's choice), for a child that cannot take port 0. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a !== null ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Our own nats-server with JetStream, on an ephemeral port with its own store directory: the
 * suite can stop it mid-run ("NATS stopped") and start it again on the same port.
 */
export class NatsChild {
  #proc: ChildProcess | null = null;
  readonly #dir = mkdtempSync(join(tmpdir(), 'fleetkey-nats-'));
  private constructor(readonly port: number) {}

  static async start(): Promise<NatsChild> {
    const n = new NatsChild(await freePort());
    await n.up();
    return n;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    const proc = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.#dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#proc = proc;
    await new Promise<void>((resolve, reject) => {
      let log = '';
      const timer = setTimeout(() => reject(new Error(`nats-server did not start: ${log}`)), 15_000);
      const on = (d: Buffer) => {
        log += d.toString();
        if (log.includes('Server is ready')) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stderr?.on('data', on);
      proc.stdout?.on('data', on);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited ${code}: ${log}`));
      });
    });
  }

  /** SIGKILL: the bus vanishes without a goodbye, as in a crash or a network cut. */
  async down(): Promise<void> {
    const p = this.#proc;
    this.#proc = null;
    if (p === null || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  }

  async stop(): Promise<void> {
    await this.down();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
