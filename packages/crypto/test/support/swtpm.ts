/**
 * A real software TPM for tests: manufactures a swtpm state in a temp dir (EK certificates
 * signed by a throw-away local "manufacturer" CA kept in the same dir), runs `swtpm socket` on
 * loopback ports, and drives it with tpm2-tools. No resource manager: every tool invocation is
 * followed by `tpm2_flushcontext -t` so transient objects never fill the TPM's ~3 slots.
 */
import { execFile } from 'node:child_process';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

const TOOLS = [
  'swtpm',
  'swtpm_setup',
  'swtpm_localca',
  'swtpm_ioctl',
  'tpm2_createek',
  'tpm2_createak',
  'tpm2_readpublic',
  'tpm2_nvread',
  'tpm2_makecredential',
  'tpm2_activatecredential',
  'tpm2_startauthsession',
  'tpm2_policysecret',
  'tpm2_flushcontext',
  'tpm2_createprimary',
  'tpm2_create',
];

/** Why the swtpm tests cannot run here, or null when every binary they need is on PATH. */
export async function swtpmMissing(): Promise<string | null> {
  const dirs = (process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== '');
  const missing: string[] = [];
  for (const tool of TOOLS) {
    let found = false;
    for (const d of dirs) {
      try {
        await access(join(d, tool), fsConstants.X_OK);
        found = true;
        break;
      } catch {
        // not in this directory
      }
    }
    if (!found) missing.push(tool);
  }
  if (missing.length === 0) return null;
  const reason = `swtpm/tpm2-tools binaries not installed: ${missing.join(', ')}`;
  // The TPM suites prove the takeover and EK claims: in CI a missing tool must fail the run, not
  // skip them quietly (.ci/run installs swtpm and tpm2-tools). Locally they may skip, with the reason.
  if (process.env['CI'] === 'true') throw new Error(`CI: ${reason}; .ci/run installs them`);
  return reason;
}

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
}

export class ExecError extends Error {
  constructor(
    message: string,
    readonly code: number | string | null,
    readonly stderr: string,
  ) {
    super(message);
  }
}

function run(file: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { ...opts, timeout: 15_000, maxBuffer: 1 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err !== null) {
        const code = typeof err.code === 'number' || typeof err.code === 'string' ? err.code : null;
        reject(new ExecError(`${file} ${args.join(' ')} failed (${String(code)}): ${stderr.trim()}`, code, stderr));
        return;
      }
      resolve({ stdout, stderr });
    });
  });
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** The swtpm TCTI always finds the control channel at port + 1, so we need a free pair. */
async function freePortPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20_000 + 2 * Math.floor(Math.random() * 20_000);
    if ((await canListen(port)) && (await canListen(port + 1))) return port;
  }
  throw new Error('no free loopback port pair found');
}

async function waitForPort(port: number, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`swtpm did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface Swtpm {
  /** Temp work dir: TPM state, local CA, and scratch files for tpm2-tools. */
  readonly dir: string;
  readonly port: number;
  /** PEM of the local manufacturer root and of the CA that signed the EK certificates. */
  readonly rootCaPem: string;
  readonly issuerCaPem: string;
  /** Absolute path of a scratch file in the work dir. */
  path(name: string): string;
  /** Runs one tpm2-tools command against this TPM, then flushes transient objects. */
  tpm2(tool: string, args: readonly string[]): Promise<ExecResult>;
  stop(): Promise<void>;
}

/**
 * Manufactures a TPM (EK certs via a CA confined to the temp dir) and starts swtpm on it.
 * `sameManufacturerAs` signs this TPM's EK certificate with another TPM's local CA: two TPMs from
 * one trusted manufacturer, as a fleet has (start them one after the other; stop that one last).
 */
export async function startSwtpm(options: { sameManufacturerAs?: Swtpm } = {}): Promise<Swtpm> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetkey-swtpm-'));
  try {
    const state = join(dir, 'state');
    const ca = options.sameManufacturerAs === undefined ? join(dir, 'ca') : options.sameManufacturerAs.path('ca');
    await mkdir(state);
    if (options.sameManufacturerAs === undefined) await mkdir(ca);
    // The default config points at /var/lib/swtpm-localca: shared between runs and needing
    // root. These three files keep the whole "manufacturer" inside the temp dir.
    await writeFile(
      join(dir, 'swtpm-localca.conf'),
      [`statedir = ${ca}`, `signingkey = ${ca}/signkey.pem`, `issuercert = ${ca}/issuercert.pem`, `certserial = ${ca}/certserial`, ''].join('\n'),
    );
    await writeFile(
      join(dir, 'swtpm-localca.options'),
      ['--platform-manufacturer Fleetkey', '--platform-version 2.1', '--platform-model test', ''].join('\n'),
    );
    await writeFile(
      join(dir, 'swtpm_setup.conf'),
      [
        'create_certs_tool = swtpm_localca',
        `create_certs_tool_config = ${dir}/swtpm-localca.conf`,
        `create_certs_tool_options = ${dir}/swtpm-localca.options`,
        'active_pcr_banks = sha256',
        '',
      ].join('\n'),
    );
    await run('swtpm_setup', [
      '--tpm2',
      '--config',
      join(dir, 'swtpm_setup.conf'),
      '--tpmstate',
      state,
      '--create-ek-cert',
      '--create-platform-cert',
      '--lock-nvram',
      '--overwrite',
      '--ecc',
    ]);
    const rootCaPem = await readFile(join(ca, 'swtpm-localca-rootca-cert.pem'), 'utf8');
    const issuerCaPem = await readFile(join(ca, 'issuercert.pem'), 'utf8');

    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePortPair();
      const ctrlPort = port + 1;
      const pidFile = join(dir, 'swtpm.pid');
      try {
        await run('swtpm', [
          'socket',
          '--tpm2',
          '--server',
          `type=tcp,port=${port},bindaddr=127.0.0.1`,
          '--ctrl',
          `type=tcp,port=${ctrlPort},bindaddr=127.0.0.1`,
          '--tpmstate',
          `dir=${state}`,
          '--flags',
          'not-need-init,startup-clear',
          '--daemon',
          '--pid',
          `file=${pidFile}`,
        ]);
        await waitForPort(port, 3000);
      } catch (e) {
        lastError = e; // port taken between probe and bind: try other ports
        continue;
      }
      const pid = Number((await readFile(pidFile, 'utf8')).trim());
      const env = { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${port}` };
      const handle: Swtpm = {
        dir,
        port,
        rootCaPem,
        issuerCaPem,
        path: (name) => join(dir, name),
        async tpm2(tool, args) {
          try {
            return await run(tool, args, { env, cwd: dir });
          } finally {
            await run('tpm2_flushcontext', ['-t'], { env, cwd: dir }).catch(() => undefined);
          }
        },
        async stop() {
          await run('swtpm_ioctl', ['--tcp', `127.0.0.1:${ctrlPort}`, '-s']).catch(() => undefined);
          // Only the swtpm we started, by its pid, and only if the shutdown command left it running.
          const alive = (): boolean => {
            try {
              process.kill(pid, 0);
              return true;
            } catch {
              return false;
            }
          };
          if (Number.isInteger(pid) && pid > 1) {
            for (let i = 0; i < 40 && alive(); i++) await new Promise((r) => setTimeout(r, 25));
            if (alive()) {
              try {
                process.kill(pid, 'SIGTERM');
              } catch {
                // exited between the check and the signal
              }
            }
          }
          await rm(dir, { recursive: true, force: true });
        },
      };
      return handle;
    }
    throw lastError instanceof Error ? lastError : new Error('could not start swtpm');
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
