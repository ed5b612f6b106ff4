import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FleetkeyError } from '@fleetkey/protocol';

/**
 * tpm2-tools' credential file (tpm2_makecredential -o, tpm2_activatecredential -i): a header of
 * magic 0xBADCC0DE and version 1 (both big-endian UINT32), then TPM2B_ID_OBJECT and
 * TPM2B_ENCRYPTED_SECRET as they travel on the wire (each with its UINT16 size prefix).
 * tpm2-tools lib/files.c files_save_credential / files_load_credential.
 */
export const TPM2_TOOLS_CREDENTIAL_MAGIC = 0xbadcc0de;
export const TPM2_TOOLS_CREDENTIAL_VERSION = 1;

/** Checks one TPM2B: a UINT16 size that matches the bytes after it (TPM 2.0 Part 2 §10.4). */
export function checkTpm2b(b: Buffer, what: string, max: number): void {
  if (b.length < 2 || b.readUInt16BE(0) !== b.length - 2 || b.length - 2 > max) {
    throw new FleetkeyError('TPM_CREDENTIAL_INVALID', { detail: `${what} is not a TPM2B of at most ${max} bytes` });
  }
}

export function credentialFile(credentialBlob: Buffer, encryptedSecret: Buffer): Buffer {
  // Part 2 §12.4.3 TPM2B_ID_OBJECT ≤ sizeof(TPMS_ID_OBJECT); §11.4.33 TPM2B_ENCRYPTED_SECRET ≤ sizeof(TPMU_ENCRYPTED_SECRET).
  checkTpm2b(credentialBlob, 'credentialBlob', 256);
  checkTpm2b(encryptedSecret, 'encryptedSecret', 512);
  const header = Buffer.alloc(8);
  header.writeUInt32BE(TPM2_TOOLS_CREDENTIAL_MAGIC, 0);
  header.writeUInt32BE(TPM2_TOOLS_CREDENTIAL_VERSION, 4);
  return Buffer.concat([header, credentialBlob, encryptedSecret]);
}

export interface TpmTools {
  /** Scratch directory (0700) for context, public and credential files. */
  readonly dir: string;
  path(name: string): string;
  /**
   * Runs one tpm2-tools command, then `tpm2_flushcontext -t`: without a resource manager
   * (swtpm, /dev/tpm0) the TPM holds ~3 transient objects and every tool leaves its own loaded.
   * Under the kernel's resource manager (/dev/tpmrm0) the flush finds nothing of ours and is a no-op.
   */
  run(tool: string, args: readonly string[]): Promise<string>;
  /**
   * As {@link run}, with `input` written to the tool's stdin and its stdout returned as bytes:
   * secrets go in and out through pipes, never through a scratch file.
   */
  runBinary(tool: string, args: readonly string[], input?: Uint8Array): Promise<Buffer>;
  close(): Promise<void>;
}

/**
 * The TPM response code a failed tool printed (`Esys_Unseal(0x99D)`), or undefined. tpm2-tools
 * prints the TSS2 RC whose low 16 bits are the TPM_RC (TPM 2.0 Part 2 §6.6).
 */
export function tpmResponseCode(stderr: string): number | undefined {
  // Both forms tpm2-tools prints: `ErrorCode (0x000001df)` from the ESAPI and `Esys_Load(0x1DF)`
  // (spelt `Eys_Load` by some 5.x tools, hence the loose prefix).
  const m = /ErrorCode \((0x[0-9A-Fa-f]+)\)/.exec(stderr) ?? /\bE\w*_\w+\((0x[0-9A-Fa-f]+)\)/.exec(stderr);
  return m === null ? undefined : Number.parseInt(m[1]!, 16) & 0xffff;
}

function toolError(file: string, stderr: string, err: unknown): FleetkeyError {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
    return new FleetkeyError('CONFIG_INVALID', { detail: `${file} not found: install tpm2-tools`, cause: err });
  }
  const rc = tpmResponseCode(stderr);
  // tpm2-tools' stderr names the failing TPM command and response code, never key material.
  return new FleetkeyError('INTERNAL', {
    detail: `${file} failed: ${stderr.trim().split('\n').slice(-3).join(' | ')}`,
    cause: err,
    ...(rc === undefined ? {} : { extra: { tpmRc: rc } }),
  });
}

function execBinary(file: string, args: readonly string[], env: NodeJS.ProcessEnv, cwd: string, input: Uint8Array | undefined): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, cwd, stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000 });
    const out: Buffer[] = [];
    let outBytes = 0;
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      outBytes += b.length;
      if (outBytes <= 1 << 20) out.push(b);
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      if (stderr.length < 1 << 16) stderr += s;
    });
    child.on('error', (err) => reject(toolError(file, stderr, err)));
    child.on('close', (code) => {
      const stdout = Buffer.concat(out);
      for (const b of out) b.fill(0); // the chunks may hold an unsealed secret
      if (code === 0) return resolve(stdout);
      stdout.fill(0);
      reject(toolError(file, stderr, new Error(`exit ${String(code)}`)));
    });
    child.stdin.on('error', () => undefined); // a tool that exits early closes the pipe
    child.stdin.end(input === undefined ? undefined : Buffer.from(input.buffer, input.byteOffset, input.byteLength));
  });
}

function exec(file: string, args: readonly string[], env: NodeJS.ProcessEnv, cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { env, cwd, timeout: 30_000, maxBuffer: 1 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err === null) return resolve(stdout);
      reject(toolError(file, stderr, err));
    });
  });
}

/** Opens a scratch directory and binds the tools to the TPM at `tcti` (e.g. `device:/dev/tpmrm0`). */
export async function openTpmTools(tcti: string): Promise<TpmTools> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetkey-tpm-'));
  const env = { ...process.env, TPM2TOOLS_TCTI: tcti };
  return {
    dir,
    path: (name) => join(dir, name),
    async run(tool, args) {
      try {
        return await exec(tool, args, env, dir);
      } finally {
        await exec('tpm2_flushcontext', ['-t'], env, dir).catch(() => undefined);
      }
    },
    async runBinary(tool, args, input) {
      try {
        return await execBinary(tool, args, env, dir, input);
      } finally {
        await exec('tpm2_flushcontext', ['-t'], env, dir).catch(() => undefined);
      }
    },
    close: () => rm(dir, { recursive: true, force: true }),
  };
}
