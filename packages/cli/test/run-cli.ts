import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { vi } from 'vitest';

// Every CLI test starts real processes (a server, the binary once per step), and each start loads
// the whole program: on a 2-core machine that shares its cores with the gateway fuzzer and the
// other suites, a story of a dozen steps can outlast the default 30 s without anything being wrong.
vi.setConfig({ testTimeout: 180_000, hookTimeout: 180_000 });

export const BIN = fileURLToPath(new URL('../bin/fleetkey.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built `fleetkey` binary as a user would, in `cwd`, with a clean environment. */
export function fleetkey(cwd: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

export async function fleetkeyJson<T = any>(cwd: string, args: string[], env: Record<string, string> = {}): Promise<T> {
  const r = await fleetkey(cwd, [...args, '--json'], env);
  if (r.code !== 0) throw new Error(`fleetkey ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** Starts `fleetkey serve` and resolves once it listens; returns the process and its first stdout. */
export async function serve(
  cwd: string,
  args: string[] = [],
  env: Record<string, string> = {},
  globalArgs: string[] = [],
): Promise<{ proc: ChildProcess; stdout: () => string; url: string; stop: () => Promise<void> }> {
  const proc = spawn(process.execPath, [BIN, ...globalArgs, 'serve', '--port', '0', '--device-port', '0', '--mqtt-port', '0', ...args], {
    cwd,
    env: { PATH: process.env['PATH'] ?? '', FLEETKEY_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${err}`)), 60_000);
    proc.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.once('exit', (code) => reject(new Error(`server exited ${code}: ${err}`)));
  });
  return {
    proc,
    url,
    stdout: () => out,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

/** Calls the operator API of a `serve`d server with the admin token it wrote to `<cwd>/fleetkey-data`. */
export function adminApi(url: () => string, cwd: () => string) {
  return async (method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> => {
    const token = readFileSync(join(cwd(), 'fleetkey-data', 'admin.token'), 'utf8').trim();
    const r = await fetch(`${url()}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: r.status, body: (await r.json()) as any };
  };
}
