import { Migrator, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import type { Dialect } from './dialect.js';
import * as m001 from './migrations/001-registry.js';
import * as m002 from './migrations/002-ca.js';
import * as m003 from './migrations/003-provisioning.js';
import * as m004 from './migrations/004-data.js';
import * as m005 from './migrations/005-enrollment-decision.js';
import * as m006 from './migrations/006-message-keys.js';
import * as m007 from './migrations/007-binding-intervals.js';
import * as m008 from './migrations/008-enrollment-crls.js';
import * as m009 from './migrations/009-device-evidence.js';
import * as m010 from './migrations/010-updates.js';
import * as m011 from './migrations/011-update-reports.js';
import * as m012 from './migrations/012-rollouts.js';
import * as m013 from './migrations/013-attestation.js';
import * as m014 from './migrations/014-posture-indexes.js';
import * as m015 from './migrations/015-console-sessions.js';
import * as m016 from './migrations/016-cluster-nodes.js';
import * as m017 from './migrations/017-rate-buckets.js';
import * as m018 from './migrations/018-director-previous.js';

interface DialectMigration {
  up(db: Kysely<unknown>, dialect: Dialect): Promise<void>;
}

// Migrations are compiled in, not read from a folder at run time, so the installed bin and the
// tests run the same list. Append only; never edit a released migration.
const MIGRATIONS: Record<string, DialectMigration> = {
  '001-registry': m001,
  '002-ca': m002,
  '003-provisioning': m003,
  '004-data': m004,
  '005-enrollment-decision': m005,
  '006-message-keys': m006,
  '007-binding-intervals': m007,
  '008-enrollment-crls': m008,
  '009-device-evidence': m009,
  '010-updates': m010,
  '011-update-reports': m011,
  '012-rollouts': m012,
  '013-attestation': m013,
  '014-posture-indexes': m014,
  '015-console-sessions': m015,
  '016-cluster-nodes': m016,
  '017-rate-buckets': m017,
  '018-director-previous': m018,
};

class InlineProvider implements MigrationProvider {
  constructor(private readonly dialect: Dialect) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    const out: Record<string, Migration> = {};
    for (const [name, m] of Object.entries(MIGRATIONS)) {
      out[name] = { up: (db) => m.up(db, this.dialect) };
    }
    return out;
  }
}

export async function migrateToLatest(db: Kysely<any>, dialect: Dialect): Promise<void> {
  const migrator = new Migrator({ db, provider: new InlineProvider(dialect) });
  const { error, results } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`migration ${failed} failed: ${error instanceof Error ? error.message : String(error)}`);
  }
}
