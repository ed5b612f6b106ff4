import { rolloutCommand } from './commands/rollout.js';
import { FleetkeyError } from '@fleetkey/protocol';
import { Command, CommanderError } from 'commander';
import { ApiError } from './client.js';
import { attestationCommand } from './commands/attestation.js';
import { auditCommand } from './commands/audit.js';
import { caCommand } from './commands/ca.js';
import { certCommand } from './commands/cert.js';
import { initCommand } from './commands/init.js';
import { enrollmentCommand } from './commands/enrollment.js';
import { commandCommand, dataCommand } from './commands/data.js';
import { agentCommand } from './commands/agent.js';
import { manufactureCommand } from './commands/manufacture.js';
import { deviceCommand } from './commands/device.js';
import { nameCommand } from './commands/name.js';
import { postureCommand } from './commands/posture.js';
import { serveCommand } from './commands/serve.js';
import { clusterCommand } from './commands/cluster.js';
import { simulateCommand } from './commands/simulate.js';
import { tokenCommand } from './commands/token.js';
import { webhookCommand } from './commands/webhook.js';
import { releaseCommand, updatesCommand } from './commands/release.js';

/** Exit codes: 0 ok, 1 refused by the server, 2 usage, 3 server unreachable or other failure, 4 posture findings at or above --fail-on. */
export async function main(argv: string[]): Promise<void> {
  const program = new Command('fleetkey')
    .description('Fleetkey: identity, provisioning and security for IoT fleets')
    .option('--url <url>', 'server URL (FLEETKEY_URL; default: the local server in the data dir)')
    .option('--token <token>', 'API token (FLEETKEY_TOKEN; default: <data-dir>/admin.token)')
    .option('--data-dir <dir>', 'local data directory (FLEETKEY_DATA_DIR, default ./fleetkey-data)')
    .option('--json', 'machine-readable output')
    .showHelpAfterError()
    .exitOverride();
  for (const c of [initCommand(), serveCommand(), caCommand(), certCommand(), deviceCommand(), nameCommand(), enrollmentCommand(), manufactureCommand(), simulateCommand(), agentCommand(), dataCommand(), commandCommand(), tokenCommand(), webhookCommand(), auditCommand(), releaseCommand(), updatesCommand(), attestationCommand(), postureCommand(), clusterCommand(), rolloutCommand()]) {
    program.addCommand(c);
  }
  // Subcommands copy settings only when created, so usage errors deep in the tree would call
  // process.exit themselves; route them all through one exit-code policy.
  const override = (c: Command): void => {
    c.exitOverride();
    c.commands.forEach(override);
  };
  override(program);
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
    const json = program.opts<{ json?: boolean }>().json === true;
    if (e instanceof ApiError) {
      if (json) process.stdout.write(`${JSON.stringify({ error: e.body }, null, 2)}\n`);
      const moved = e.body.movedTo === undefined ? '' : ` (renamed to ${e.body.movedTo})`;
      const details = (e.body.details ?? []).map((d) => `\n  ${d.path || '/'}: ${d.message}`).join('');
      process.stderr.write(`fleetkey: refused: ${e.body.code}: ${e.body.message}${moved}${details}\n`);
      process.exitCode = 1;
      return;
    }
    if (e instanceof FleetkeyError) {
      // Raised in this process (serve, init): the detail names the file and the fix, and it goes
      // to the operator's own terminal, not to a remote caller.
      process.stderr.write(`fleetkey: ${e.code}: ${e.message}${e.detail === undefined ? '' : `\n  ${e.detail}`}\n`);
      process.exitCode = 3;
      return;
    }
    process.stderr.write(`fleetkey: ${(e as Error).message}\n`);
    process.exitCode = 3;
  }
}
