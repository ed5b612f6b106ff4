import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeSecretFile } from '@fleetkey/crypto';
import { createServer, loadConfig } from '@fleetkey/server';
import { Command, Option } from 'commander';
import type { GlobalOptions } from '../client.js';
import { emit, table } from '../output.js';

export function initCommand(): Command {
  return new Command('init')
    .description('create the data dir, master key, CA (root, issuing, manufacturing, TLS) and the first admin token')
    .option('--data-dir <dir>', 'data directory (FLEETKEY_DATA_DIR, default ./fleetkey-data)')
    .addOption(new Option('--curve <curve>', 'CA key curve').choices(['P-256', 'P-384']).default('P-256'))
    .addOption(new Option('--keystore <type>', 'where CA keys live').choices(['file', 'pkcs11']).default('file'))
    .option('--module <path>', 'PKCS#11 module (with --keystore pkcs11)')
    .option('--token-label <label>', 'PKCS#11 token label (with --keystore pkcs11)')
    .option('--pin-file <file>', 'file holding the token PIN, mode 0600 (with --keystore pkcs11)')
    .option('--database-url <url>', 'postgres://… (DATABASE_URL)')
    .action(async (o: { dataDir?: string; curve: 'P-256' | 'P-384'; keystore: 'file' | 'pkcs11'; module?: string; tokenLabel?: string; pinFile?: string; databaseUrl?: string }, c: Command) => {
      const g = c.optsWithGlobals<GlobalOptions>();
      const dataDir = resolve(o.dataDir ?? g.dataDir ?? process.env['FLEETKEY_DATA_DIR'] ?? 'fleetkey-data');
      if (existsSync(join(dataDir, 'master.key'))) throw new Error(`${dataDir} is already initialised`);
      const ca: Record<string, unknown> = { curve: o.curve };
      if (o.keystore === 'pkcs11') {
        if (o.module === undefined || o.tokenLabel === undefined || o.pinFile === undefined) {
          throw new Error('--keystore pkcs11 needs --module, --token-label and --pin-file');
        }
        ca['keystore'] = { type: 'pkcs11', module: o.module, tokenLabel: o.tokenLabel, pinFile: resolve(o.pinFile) };
      }
      // The choices are kept in the data dir's config so `serve` uses the same keystore.
      // 0700 dir and 0600 file whatever the umask; an existing data dir open to others is then
      // refused by createServer, not fixed.
      await writeSecretFile(join(dataDir, 'fleetkey.json'), Buffer.from(`${JSON.stringify({ ca }, null, 2)}\n`), { overwrite: true });
      const config = loadConfig({ overrides: { dataDir, ...(o.databaseUrl === undefined ? {} : { databaseUrl: o.databaseUrl }) }, env: { ...process.env, FLEETKEY_LOG_LEVEL: 'warn' } });
      const server = await createServer(config, { listen: false });
      try {
        const authorities = server.ca.authorities.all().map((a) => ({ id: a.row.id, role: a.row.role, keystore: a.row.keystore, subject: a.row.subject, notAfter: new Date(a.row.not_after).toISOString() }));
        emit(g, { dataDir, authorities, adminToken: server.bootstrapAdminToken }, () =>
          [
            `initialised ${dataDir}`,
            table(['ROLE', 'KEYSTORE', 'SUBJECT', 'NOT AFTER'], authorities.map((a) => [a.role, a.keystore, a.subject, a.notAfter])),
            server.bootstrapAdminToken === null ? '' : `\nAdmin API token (shown once; also saved with mode 0600 to ${join(dataDir, 'admin.token')}):\n${server.bootstrapAdminToken}`,
          ].join('\n'),
        );
      } finally {
        await server.close();
      }
    });
}
