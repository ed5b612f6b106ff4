import { readFileSync } from 'node:fs';
import { FleetkeyError } from '@fleetkey/protocol/base';
import { Command, CommanderError } from 'commander';
import { ApiError, UnreachableError, UsageError } from './client.js';

interface CommandEntry {
  readonly name: string;
  readonly summary: string;
  load(): Promise<Command>;
}

/**
 * Every top-level command, loaded only when it runs: a command that talks to the server loads
 * commander, its own module and the schema-free protocol (`@fleetkey/protocol/base`), never the
 * server stack, the crypto stack or the device SDK (issue 14: answers in ≤ 0.3 s). Only `serve`,
 * `init` and `simulate` load @fleetkey/server or the device SDK; `agent` and `manufacture` need
 * the device SDK and the crypto stack for their own work.
 */
const COMMANDS: readonly CommandEntry[] = [
  { name: 'init', summary: 'create the data dir, master key, CA and the first admin token', load: async () => (await import('./commands/init.js')).initCommand() },
  { name: 'serve', summary: 'run the Fleetkey server', load: async () => (await import('./commands/serve.js')).serveCommand() },
  { name: 'ca', summary: 'the certificate authorities', load: async () => (await import('./commands/ca.js')).caCommand() },
  { name: 'cert', summary: 'device certificates', load: async () => (await import('./commands/cert.js')).certCommand() },
  { name: 'device', summary: 'physical identities: create, show, list, suspend, resume, revoke, retire, evidence, key export', load: async () => (await import('./commands/device.js')).deviceCommand() },
  { name: 'name', summary: 'logical identities: create, bind, replace, rename, history', load: async () => (await import('./commands/name.js')).nameCommand() },
  { name: 'enrollment', summary: 'who may provision, with which evidence, and what they get', load: async () => (await import('./commands/enrollment.js')).enrollmentCommand() },
  { name: 'manufacture', summary: 'mint device ids, keys and birth certificates into per-device bundles', load: async () => (await import('./commands/manufacture.js')).manufactureCommand() },
  { name: 'simulate', summary: 'simulate N devices against a server and report throughput and latency', load: async () => (await import('./commands/simulate.js')).simulateCommand() },
  { name: 'agent', summary: 'device-side operations (run on the device)', load: async () => (await import('./commands/agent.js')).agentCommand() },
  { name: 'data', summary: 'what devices sent: diagnostics by name, telemetry by device', load: async () => (await import('./commands/data.js')).dataCommand() },
  { name: 'command', summary: 'commands to devices, addressed by name', load: async () => (await import('./commands/data.js')).commandCommand() },
  { name: 'token', summary: 'operator API tokens', load: async () => (await import('./commands/token.js')).tokenCommand() },
  { name: 'webhook', summary: 'signed event deliveries to other systems', load: async () => (await import('./commands/webhook.js')).webhookCommand() },
  { name: 'audit', summary: 'the hash-chained audit log', load: async () => (await import('./commands/audit.js')).auditCommand() },
  { name: 'release', summary: 'signed releases (TUF targets) and which name runs which release', load: async () => (await import('./commands/release.js')).releaseCommand() },
  { name: 'updates', summary: 'TUF roots of the update repository and the director', load: async () => (await import('./commands/release.js')).updatesCommand() },
  { name: 'posture', summary: 'the fleet posture audit: findings by severity with their counts and ids', load: async () => (await import('./commands/posture.js')).postureCommand() },
  { name: 'cluster', summary: 'the nodes of a Fleetkey cluster', load: async () => (await import('./commands/cluster.js')).clusterCommand() },
  { name: 'attestation', summary: 'measured-boot attestation: policies per enrollment or model', load: async () => (await import('./commands/attestation.js')).attestationCommand() },
  { name: 'rollout', summary: 'staged rollouts of a release to names, in waves that stop themselves', load: async () => (await import('./commands/rollout.js')).rolloutCommand() },
];

/** Global options that take a value: their value is not the command's name. */
const VALUED = new Set(['--url', '--token', '--data-dir']);

/** The top-level command argv names (`fleetkey [globals] <command> …`, or `fleetkey help <command>`). */
export function commandNameOf(argv: readonly string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return argv[i + 1];
    if (a.startsWith('-')) {
      if (VALUED.has(a)) i++;
      continue;
    }
    return a === 'help' ? (argv[i + 1] ?? a) : a;
  }
  return undefined;
}

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Exit codes: 0 ok, 1 refused by the server, 2 usage, 3 server unreachable or other failure, 4 posture findings at or above --fail-on. */
export async function main(argv: string[]): Promise<void> {
  const wanted = commandNameOf(argv);
  const program = new Command('fleetkey').description('Fleetkey: identity, provisioning and security for IoT fleets');
  // Commander reads a parent's options anywhere on the line, so a global `--version` would
  // swallow a command's own (`release create --version 3.1.0` printed the CLI's version and
  // exited 0). It is only offered when no command is named.
  if (wanted === undefined) program.version(version(), '-V, --version', 'print the version');
  program
    .option('--url <url>', 'server URL (FLEETKEY_URL; default: the local server in the data dir)')
    .option('--token <token>', 'API token (FLEETKEY_TOKEN; default: <data-dir>/admin.token)')
    .option('--data-dir <dir>', 'local data directory (FLEETKEY_DATA_DIR, default ./fleetkey-data)')
    .option('--json', 'machine-readable output (errors too: {"error": {code, message}})')
    .showHelpAfterError()
    .exitOverride();
  for (const c of COMMANDS) {
    // The others appear in the help with their summary, without loading their module.
    program.addCommand(c.name === wanted ? await c.load() : new Command(c.name).description(c.summary).allowUnknownOption().helpOption(false));
  }
  // Subcommands copy settings only when created, so usage errors deep in the tree would call
  // process.exit themselves; route them all through one exit-code policy.
  const override = (c: Command): void => {
    c.exitOverride();
    c.commands.forEach(override);
  };
  override(program);
  const json = argv.includes('--json');
  const fail = (code: number, error: Record<string, unknown>, line: string): void => {
    if (json) process.stdout.write(`${JSON.stringify({ error }, null, 2)}\n`);
    process.stderr.write(line);
    process.exitCode = code;
  };
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
    if (e instanceof ApiError) {
      const moved = e.body.movedTo === undefined ? '' : ` (renamed to ${e.body.movedTo})`;
      const details = (e.body.details ?? []).map((d) => `\n  ${d.path || '/'}: ${d.message}`).join('');
      return fail(1, e.body as unknown as Record<string, unknown>, `fleetkey: refused: ${e.body.code}: ${e.body.message}${moved}${details}\n`);
    }
    if (e instanceof UnreachableError) {
      return fail(3, { code: 'UNREACHABLE', message: e.message, url: e.url }, `fleetkey: ${e.message}\n`);
    }
    if (e instanceof UsageError) {
      // Options that commander accepted but that do not fit together: exit 3, as before.
      return fail(3, { code: 'USAGE', message: e.message }, `fleetkey: ${e.message}\n`);
    }
    if (e instanceof FleetkeyError) {
      // Raised in this process (serve, init): the detail names the file and the fix, and it goes
      // to the operator's own terminal, not to a remote caller.
      return fail(3, { code: e.code, message: e.message, ...(e.detail === undefined ? {} : { detail: e.detail }) }, `fleetkey: ${e.code}: ${e.message}${e.detail === undefined ? '' : `\n  ${e.detail}`}\n`);
    }
    return fail(3, { code: 'FAILED', message: (e as Error).message }, `fleetkey: ${(e as Error).message}\n`);
  }
}
