/**
 * A throwaway PKI made with the openssl binary: a device CA, a server certificate for
 * 127.0.0.1/localhost, one client certificate per device id (CN = device id), and a client
 * certificate from an untrusted CA. PEM files stay on disk for mosquitto_pub/_sub.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Identity {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

export interface Pki {
  dir: string;
  caFile: string;
  ca: string;
  server: Identity;
  devices: Map<string, Identity>;
  /** Valid chain, wrong CA: must fail the TLS handshake. */
  rogue: Identity;
  dispose(): Promise<void>;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  await run('openssl', args, { cwd: dir, timeout: 20_000 });
}

async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.crt`, '-subj', `/CN=${name}`, '-days', '2',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

async function issue(dir: string, ca: string, name: string, cn: string, ext: string): Promise<Identity> {
  await writeFile(join(dir, `${name}.ext`), ext);
  await openssl(dir, [
    'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`,
  ]);
  await openssl(dir, [
    'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-set_serial',
    String(Math.floor(Math.random() * 1e9)), '-days', '1', '-out', `${name}.crt`, '-extfile', `${name}.ext`,
  ]);
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  return { cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8'), certFile, keyFile };
}

const CLIENT_EXT = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n';
const SERVER_EXT =
  'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n';

export async function makePki(deviceIds: string[]): Promise<Pki> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetkey-gw-'));
  await Promise.all([makeCa(dir, 'ca'), makeCa(dir, 'rogue-ca')]);
  const server = await issue(dir, 'ca', 'server', 'gateway.test', SERVER_EXT);
  const devices = new Map<string, Identity>();
  await Promise.all(
    deviceIds.map(async (id, i) => {
      devices.set(id, await issue(dir, 'ca', `device-${i}`, id, CLIENT_EXT));
    }),
  );
  const rogue = await issue(dir, 'rogue-ca', 'rogue', deviceIds[0] ?? randomUUID(), CLIENT_EXT);
  const caFile = join(dir, 'ca.crt');
  return {
    dir,
    caFile,
    ca: await readFile(caFile, 'utf8'),
    server,
    devices,
    rogue,
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}

export function deviceIdentity(pki: Pki, id: string): Identity {
  const d = pki.devices.get(id);
  if (d === undefined) throw new Error(`no test identity for ${id}`);
  return d;
}
