import { createReadStream, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { addSignature, buildRoot } from '@fleetkey/crypto';
import type { Release, RootSigned, Signed, TargetsSigned, TufKey } from '@fleetkey/protocol';
import { Command } from 'commander';
import { Client, type GlobalOptions } from '../client.js';
import { emit, table } from '../output.js';
import { generateKeyFile, loadPublic, loadSigner } from './tuf-keys.js';

const collect = (v: string, prev: string[]) => [...prev, v];

/** Adds signatures; other members of the file (a draft's `release`) are kept as they were. */
async function signFile(path: string, keys: string[], passphraseEnv: string | undefined): Promise<Signed<unknown>> {
  const file = JSON.parse(readFileSync(path, 'utf8')) as Signed<unknown> & Record<string, unknown>;
  if (typeof file !== 'object' || file === null || !Array.isArray(file.signatures) || typeof file.signed !== 'object') throw new Error(`${path} is not TUF metadata ({signatures, signed})`);
  let doc: Signed<unknown> = { signatures: file.signatures, signed: file.signed };
  for (const k of keys) doc = await addSignature(doc, loadSigner(k, passphraseEnv));
  return { ...file, ...doc };
}

export function releaseCommand(): Command {
  const cmd = new Command('release').description('signed releases (TUF targets) and which name runs which release');
  cmd
    .command('keygen')
    .description('OFFLINE: a new TUF signing key file (PKCS#8 PEM, 0600) and its .pub')
    .requiredOption('--out <file>', 'private key file to create')
    .option('--type <type>', 'ed25519 | ecdsa (P-256)', 'ed25519')
    .option('--passphrase-env <var>', 'encrypt the key with the passphrase in this environment variable')
    .action((o: { out: string; type: string; passphraseEnv?: string }, c: Command) => {
      if (o.type !== 'ed25519' && o.type !== 'ecdsa') throw new Error('--type is ed25519 or ecdsa');
      const r = generateKeyFile(o.out, o.type, o.passphraseEnv);
      emit(c.optsWithGlobals<GlobalOptions>(), r, () => `key ${r.keyid}\npublic key ${r.publicPath}`);
    });
  cmd
    .command('sign')
    .description('OFFLINE: add signatures to TUF metadata (a targets draft, a root) with key files or PKCS#11 keys')
    .requiredOption('--in <file>', 'metadata to sign')
    .requiredOption('--out <file>', 'signed metadata')
    .requiredOption('--key <file|pkcs11:...>', 'signing key (repeat for a threshold)', collect, [])
    .option('--passphrase-env <var>', 'passphrase of encrypted key files')
    .action(async (o: { in: string; out: string; key: string[]; passphraseEnv?: string }, c: Command) => {
      const doc = await signFile(o.in, o.key, o.passphraseEnv);
      writeFileSync(o.out, `${JSON.stringify(doc, null, 2)}\n`);
      emit(c.optsWithGlobals<GlobalOptions>(), { signatures: doc.signatures.map((s) => s.keyid) }, () => `${o.out}: ${doc.signatures.length} signature(s)`);
    });
  cmd
    .command('create')
    .description('upload an artifact and publish it as a release; signs with --key, or writes the draft for offline signing')
    .requiredOption('--file <file>', 'the artifact')
    .requiredOption('--version <semver>', 'release version')
    .requiredOption('--model <model>', 'device model it is for')
    .option('--min-version <semver>', 'lowest installed version this release may update')
    .option('--target-name <name>', 'TUF target name (default <model>-<version>.<file name>)')
    .option('--key <file|pkcs11:...>', 'targets signing key (repeat for a threshold)', collect, [])
    .option('--passphrase-env <var>', 'passphrase of encrypted key files')
    .option('--draft-out <file>', 'without --key: write the unsigned targets draft here, sign it offline, then `release submit`')
    .action(async (o: { file: string; version: string; model: string; minVersion?: string; targetName?: string; key: string[]; passphraseEnv?: string; draftOut?: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const client = Client.from(g);
      if (o.key.length === 0 && o.draftOut === undefined) throw new Error('give --key to sign now, or --draft-out to sign offline');
      const length = statSync(o.file).size;
      const stored = await client.upload<{ sha256: string; length: number }>(`/v1/updates/artifacts?length=${length}`, createReadStream(o.file), length);
      const targetName = o.targetName ?? `${o.model}-${o.version}.${basename(o.file).replace(/[^A-Za-z0-9._+-]/g, '_')}`;
      const release = { model: o.model, version: o.version, targetName, ...(o.minVersion === undefined ? {} : { minVersion: o.minVersion }) };
      const draft = await client.request<Signed<TargetsSigned>>('POST', '/v1/releases/draft', { ...release, sha256: stored.sha256, length: stored.length });
      if (o.key.length === 0) {
        writeFileSync(o.draftOut!, `${JSON.stringify({ ...draft, release }, null, 2)}\n`);
        emit(g, { draft: o.draftOut, ...stored }, () => `uploaded ${stored.sha256} (${stored.length} bytes); draft in ${o.draftOut}: sign it with \`fleetkey release sign\`, then \`fleetkey release submit\``);
        return;
      }
      let doc: Signed<TargetsSigned> = { signatures: [], signed: draft.signed };
      for (const k of o.key) doc = await addSignature(doc, loadSigner(k, o.passphraseEnv));
      const r = await client.request<Release>('POST', '/v1/releases', { ...release, targets: doc });
      emit(g, r, () => `release ${r.id} ${r.model} ${r.version} (${r.sha256}, ${r.length} bytes)`);
    });
  cmd
    .command('submit')
    .description('publish a release from a draft signed offline (`release create --draft-out`, then `release sign`)')
    .requiredOption('--signed <file>', 'the signed draft')
    .action(async (o: { signed: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const doc = JSON.parse(readFileSync(o.signed, 'utf8')) as Signed<TargetsSigned> & { release: Record<string, string> };
      const r = await Client.from(g).request<Release>('POST', '/v1/releases', { ...doc.release, targets: { signatures: doc.signatures, signed: doc.signed } });
      emit(g, r, () => `release ${r.id} ${r.model} ${r.version}`);
    });
  cmd
    .command('list')
    .option('--model <model>')
    .action(async (o: { model?: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await Client.from(g).request<{ releases: Release[] }>('GET', `/v1/releases${o.model === undefined ? '' : `?model=${encodeURIComponent(o.model)}`}`);
      emit(g, r, () => table(['ID', 'MODEL', 'VERSION', 'MIN', 'TARGET', 'LENGTH', 'CREATED'], r.releases.map((x) => [x.id, x.model, x.version, x.minVersion, x.targetName, x.length, x.createdAt])));
    });
  cmd.command('show <id>').action(async (id: string, _o: unknown, c: Command) => {
    const g = c.optsWithGlobals<GlobalOptions>();
    const r = await Client.from(g).request<Release>('GET', `/v1/releases/${encodeURIComponent(id)}`);
    emit(g, r, () => Object.entries(r).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(',') : String(v)}`).join('\n'));
  });
  cmd
    .command('assign')
    .description('the release NAME must run (whichever device holds the name)')
    .requiredOption('--name <name>')
    .requiredOption('--release <id>')
    .action(async (o: { name: string; release: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await Client.from(g).request<{ name: string; releaseId: string }>('POST', '/v1/releases/assign', { name: o.name, releaseId: o.release });
      emit(g, r, () => `${r.name} → release ${r.releaseId}`);
    });
  return cmd;
}

/** `fleetkey updates`: roots of the image repository and the director (built online, signed offline). */
export function updatesCommand(): Command {
  const cmd = new Command('updates').description('TUF roots of the update repository and the director');
  cmd
    .command('root-draft')
    .description('an unsigned root listing your offline root keys, your targets keys and the server\'s online keys')
    .requiredOption('--repo <repo>', 'image | director')
    .requiredOption('--version <n>', 'root version (1, then current + 1)')
    .requiredOption('--root-key <file|pkcs11:...>', 'root key, public or private file (repeat)', collect, [])
    .option('--threshold <n>', 'root signatures required', '2')
    .option('--targets-key <file>', 'image repository: targets key (repeat)', collect, [])
    .option('--targets-threshold <n>', 'targets signatures required', '1')
    .option('--expires-days <n>', 'root lifetime in days', '365')
    .requiredOption('--out <file>')
    .action(async (o: { repo: string; version: string; rootKey: string[]; threshold: string; targetsKey: string[]; targetsThreshold: string; expiresDays: string; out: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      if (o.repo !== 'image' && o.repo !== 'director') throw new Error('--repo is image or director');
      const online = (await Client.from(g).request<Record<string, Record<string, { key: TufKey }>>>('GET', '/v1/updates/online-keys'))[o.repo]!;
      const targets = o.repo === 'image' ? { keys: o.targetsKey.map((k) => loadPublic(k)), threshold: Number(o.targetsThreshold) } : { keys: [online['targets']!.key], threshold: 1 };
      if (targets.keys.length === 0) throw new Error('the image repository needs --targets-key');
      const signed: RootSigned = buildRoot({
        version: Number(o.version),
        expiresAt: Date.now() + Number(o.expiresDays) * 86_400_000,
        root: { keys: o.rootKey.map((k) => loadPublic(k)), threshold: Number(o.threshold) },
        targets,
        snapshot: { keys: [online['snapshot']!.key], threshold: 1 },
        timestamp: { keys: [online['timestamp']!.key], threshold: 1 },
      });
      writeFileSync(o.out, `${JSON.stringify({ signatures: [], signed }, null, 2)}\n`);
      emit(g, { out: o.out }, () => `${o.out}: sign it with \`fleetkey release sign --key ...\` (a threshold of the current AND the new root keys), then \`fleetkey updates submit-root\``);
    });
  cmd
    .command('submit-root')
    .requiredOption('--repo <repo>', 'image | director')
    .requiredOption('--file <file>', 'signed root')
    .action(async (o: { repo: string; file: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const r = await Client.from(g).request<{ version: number }>('POST', '/v1/updates/root', { repo: o.repo, root: JSON.parse(readFileSync(o.file, 'utf8')) as unknown });
      emit(g, r, () => `${o.repo} root version ${r.version} accepted`);
    });
  cmd
    .command('init-targets')
    .description('the first (empty) targets metadata, signed with the targets key(s)')
    .requiredOption('--key <file|pkcs11:...>', 'targets key (repeat)', collect, [])
    .option('--passphrase-env <var>')
    .action(async (o: { key: string[]; passphraseEnv?: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const signed: TargetsSigned = { _type: 'targets', spec_version: '1.0.31', version: 1, expires: new Date(Date.now() + 365 * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z'), targets: {} };
      let doc: Signed<TargetsSigned> = { signatures: [], signed };
      for (const k of o.key) doc = await addSignature(doc, loadSigner(k, o.passphraseEnv));
      const r = await Client.from(g).request<{ version: number }>('POST', '/v1/updates/targets', doc);
      emit(g, r, () => `targets version ${r.version} published`);
    });
  return cmd;
}
