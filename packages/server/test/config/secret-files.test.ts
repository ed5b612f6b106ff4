import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, loadConfig, type FleetkeyConfig } from '@fleetkey/server';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

/** Another user's uid: the tests run as root here, so chown can hand a file to it. */
const STRANGER = 4242;
const canChown = process.getuid?.() === 0;

const configFor = (dataDir: string, extra: Record<string, unknown> = {}): FleetkeyConfig => {
  const c = loadConfig({ env: { FLEETKEY_LOG_LEVEL: 'silent' }, overrides: { dataDir, port: 0 } });
  c.deviceHttp.port = 0;
  c.gateway.port = 0;
  return Object.assign(c, extra);
};

async function refusal(config: FleetkeyConfig): Promise<{ code: string; detail: string }> {
  try {
    const s = await createServer(config, { listen: false });
    await s.close();
  } catch (e) {
    const { code, detail } = e as { code?: string; detail?: string };
    if (typeof code === 'string') return { code, detail: detail ?? '' };
    throw e;
  }
  throw new Error('expected the server to refuse to start, but it started');
}

/** Every file and directory under `dir` with its mode, to see that a refusal changed nothing. */
function modes(dir: string): Record<string, number> {
  const out: Record<string, number> = { '.': statSync(dir).mode & 0o777 };
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const p = join(e.parentPath, e.name);
    out[p.slice(dir.length + 1)] = statSync(p).mode & 0o777;
  }
  return out;
}

describe('the server refuses to start on exposed secret files (issue 10 item 6)', () => {
  let root: string;
  let template: string;
  let n = 0;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'fleetkey-secrets-'));
    template = join(root, 'template');
    const s = await createServer(configFor(template)); // listening writes every file: session key, CA bundle
    await s.close();
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /** A fresh copy of an initialised data dir (cpSync keeps the modes). */
  const dataDir = (): string => {
    const d = join(root, `d${n++}`);
    cpSync(template, d, { recursive: true });
    chmodSync(d, 0o700);
    return d;
  };
  const caFile = (dir: string, prefix: string): string => {
    const f = readdirSync(join(dir, 'ca')).find((x) => x.startsWith(prefix));
    if (f === undefined) throw new Error(`no ${prefix}* in ${dir}/ca`);
    return join('ca', f);
  };

  const SECRET_FILES: [string, (dir: string) => string][] = [
    ['admin.token', () => 'admin.token'],
    ['master.key', () => 'master.key'],
    ['the SQLite database', () => 'fleetkey.db'],
    ['the root CA key', (d) => caFile(d, 'root-')],
    ['the issuing CA key', (d) => caFile(d, 'issuing-')],
    ['the manufacturing CA key', (d) => caFile(d, 'manufacturing-')],
    ['the session-token signing key', () => join('ca', 'session-token.key')],
    ['the TLS server key', () => join('ca', 'tls-server.key')],
  ];

  test.each(SECRET_FILES.flatMap(([label, file]) => [0o644, 0o640, 0o604, 0o620, 0o602].map((mode) => [label, mode.toString(8), file, mode] as const)))(
    'fail: %s with mode %s stops the start, names the file, its mode and the fix, and is not chmod-ed',
    async (_label, _octal, file, mode) => {
      const dir = dataDir();
      const path = join(dir, file(dir));
      chmodSync(path, mode);
      const before = modes(dir);
      const r = await refusal(configFor(dir));
      expect(r.code).toBe('SECRET_FILE_EXPOSED');
      expect(r.detail).toContain(path);
      expect(r.detail).toContain(`mode ${mode.toString(8)}`);
      expect(r.detail).toContain(`chmod 600 ${path}`);
      expect(modes(dir)).toEqual(before);
    },
  );

  test.each([['fleetkey.db-wal'], ['fleetkey.db-shm']])('fail: a %s readable by others stops the start', async (name) => {
    const dir = dataDir();
    const path = join(dir, name);
    writeFileSync(path, '', { mode: 0o644 });
    chmodSync(path, 0o644);
    const r = await refusal(configFor(dir));
    expect(r).toMatchObject({ code: 'SECRET_FILE_EXPOSED' });
    expect(r.detail).toContain(`chmod 600 ${path}`);
    expect(statSync(path).mode & 0o777).toBe(0o644);
  });

  test.each([0o755, 0o750, 0o705, 0o770, 0o707].map((m) => [m.toString(8), m] as const))('fail: a data dir with mode %s stops the start and is not chmod-ed', async (_octal, mode) => {
    const dir = dataDir();
    chmodSync(dir, mode);
    const r = await refusal(configFor(dir));
    expect(r.code).toBe('SECRET_FILE_EXPOSED');
    expect(r.detail).toContain(`mode ${mode.toString(8)}`);
    expect(r.detail).toContain(`chmod 700 ${dir}`);
    expect(statSync(dir).mode & 0o777).toBe(mode);
  });

  test('fail: the CA key directory readable by others stops the start', async () => {
    const dir = dataDir();
    chmodSync(join(dir, 'ca'), 0o755);
    const r = await refusal(configFor(dir));
    expect(r.code).toBe('SECRET_FILE_EXPOSED');
    expect(r.detail).toContain(`chmod 700 ${join(dir, 'ca')}`);
  });

  test.skipIf(!canChown).each([['admin.token'], ['master.key'], ['fleetkey.db'], ['.']])('fail: %s owned by another user stops the start', async (name) => {
    const dir = dataDir();
    const path = name === '.' ? dir : join(dir, name);
    chownSync(path, STRANGER, STRANGER);
    const r = await refusal(configFor(dir));
    expect(r.code).toBe('SECRET_FILE_EXPOSED');
    expect(r.detail).toContain(path);
    expect(r.detail).toContain(`owned by uid ${STRANGER}`);
    expect(statSync(path).uid).toBe(STRANGER);
  });

  test('fail: a certificate file others can write stops the start (it is public, not writable)', async () => {
    const dir = dataDir();
    const path = join(dir, 'ca-bundle.pem');
    chmodSync(path, 0o666);
    const r = await refusal(configFor(dir));
    expect(r.code).toBe('SECRET_FILE_EXPOSED');
    expect(r.detail).toContain(`chmod 644 ${path}`);
  });

  test('fail: a config file others can read stops the start with the same code and fix', () => {
    const dir = dataDir();
    const file = join(root, `config-${n++}.json`);
    writeFileSync(file, '{}');
    chmodSync(file, 0o644);
    let err: { code?: string; detail?: string } = {};
    try {
      loadConfig({ file, env: {}, overrides: { dataDir: dir } });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.code).toBe('SECRET_FILE_EXPOSED');
    expect(err.detail).toContain(`chmod 600 ${file}`);
  });

  test('fail: a PKCS#11 PIN file others can read stops the start before the module is loaded', async () => {
    const dir = join(root, `fresh-${n++}`);
    const pinFile = join(root, `pin-${n++}`);
    writeFileSync(pinFile, '1234\n');
    chmodSync(pinFile, 0o644);
    const c = configFor(dir);
    c.ca.keystore = { type: 'pkcs11', module: '/nonexistent/libpkcs11.so', tokenLabel: 'x', pinFile };
    const r = await refusal(c);
    expect(r.code).toBe('SECRET_FILE_EXPOSED');
    expect(r.detail).toContain(`chmod 600 ${pinFile}`);
  });

  test.each([0o000, 0o022, 0o077].map((m) => [m.toString(8).padStart(3, '0'), m] as const))('with umask %s a new data dir is 0700 and every secret in it 0600', async (_octal, umask) => {
    const dir = join(root, `umask-${n++}`, 'nested');
    const old = process.umask(umask);
    try {
      const s = await createServer(configFor(dir));
      await s.close();
    } finally {
      process.umask(old);
    }
    for (const [p, mode] of Object.entries(modes(dir))) {
      const isDir = p === '.' || statSync(join(dir, p)).isDirectory();
      const isPublic = p === 'ca-bundle.pem' || p.endsWith('.crt');
      if (isDir) expect(mode, p).toBe(0o700);
      else if (!isPublic) expect(mode, p).toBe(0o600);
      else expect(mode & 0o022, p).toBe(0);
    }
    expect(statSync(join(dir, '..')).mode & 0o777).toBe(0o700);
  });

  test('an initialised data dir starts again unchanged (the checks refuse only what is exposed)', async () => {
    const dir = dataDir();
    const before = modes(dir);
    const s = await createServer(configFor(dir), { listen: false });
    await s.close();
    expect(modes(dir)).toEqual(before);
  });

  test('a data dir created by hand with mkdir (umask 022, mode 755) is refused, not fixed', async () => {
    const dir = join(root, `byhand-${n++}`);
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    expect((await refusal(configFor(dir))).detail).toContain(`chmod 700 ${dir}`);
  });
});
