/**
 * A throw-away SoftHSM2 for tests: its own SOFTHSM2_CONF and token directory under the OS temp
 * dir, tokens initialised with softhsm2-util. SoftHSM reads SOFTHSM2_CONF at C_Initialize, so
 * create the fixture (which sets process.env) before the first openPkcs11Token in the process,
 * and create all tokens up front.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
export const softHsmAvailable = existsSync(SOFTHSM_MODULE) && existsSync('/usr/bin/softhsm2-util');

export interface SoftHsmToken {
  label: string;
  pin: string;
  soPin: string;
}

export interface SoftHsm {
  module: string;
  conf: string;
  dir: string;
  addToken(label: string, pin?: string, soPin?: string): Promise<SoftHsmToken>;
  cleanup(): Promise<void>;
}

export async function createSoftHsm(): Promise<SoftHsm> {
  const dir = await mkdtemp(join(tmpdir(), 'fk-softhsm-'));
  const tokens = join(dir, 'tokens');
  await mkdir(tokens, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  await writeFile(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`, {
    mode: 0o600,
  });
  const previous = process.env['SOFTHSM2_CONF'];
  process.env['SOFTHSM2_CONF'] = conf;
  const env = { ...process.env, SOFTHSM2_CONF: conf };
  return {
    module: SOFTHSM_MODULE,
    conf,
    dir,
    async addToken(label, pin = '1234-user-pin', soPin = '5678-so-pin') {
      await run('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', soPin, '--pin', pin], { env });
      return { label, pin, soPin };
    },
    async cleanup() {
      if (previous === undefined) delete process.env['SOFTHSM2_CONF'];
      else process.env['SOFTHSM2_CONF'] = previous;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
