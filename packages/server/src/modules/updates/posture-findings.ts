import { compareSemver, type PostureFinding } from '@fleetkey/protocol';
import type { Kysely } from 'kysely';
import type { Database } from '../../store/schema.js';
import type { PostureParams, PostureProvider } from '../posture/posture-provider.js';

const IN_SERVICE = ['provisioned', 'active', 'suspended'] as const;

/**
 * The releases family of the posture audit. The fleet's floor for a model is the highest
 * `min_version` any of its releases declares: the publisher said nothing older is safe to run (the
 * same floor a device raises its anti-rollback counter to). A device in service whose reported
 * installed version precedes its model's floor is a finding.
 *
 * Semantic-version precedence (SemVer 2.0.0 §11) is not an SQL comparison, so the candidates — the
 * devices of models that have a floor and have reported a version — are read by index
 * (devices_installed_version) and ordered here. Devices that never reported a version are not in
 * this finding (their release is unknown, not known to be old); docs/posture.md says so.
 */
export function releasePostureProvider(db: Kysely<Database>): PostureProvider {
  const id = 'devices.release-below-floor';
  return {
    name: 'releases',
    findingIds: [id],
    async run(p: PostureParams): Promise<PostureFinding[]> {
      const floors = new Map<string, string>();
      for (const r of await db.selectFrom('releases').select(['model', 'min_version']).where('min_version', 'is not', null).execute()) {
        const cur = floors.get(r.model);
        if (cur === undefined || compareSemver(r.min_version!, cur) > 0) floors.set(r.model, r.min_version!);
      }
      const below: string[] = [];
      if (floors.size > 0) {
        const rows = await db
          .selectFrom('devices')
          .select(['id', 'model', 'installed_version'])
          .where('model', 'in', [...floors.keys()])
          .where('installed_version', 'is not', null)
          .where('status', 'in', IN_SERVICE)
          .execute();
        for (const d of rows) {
          const floor = floors.get(d.model ?? '')!;
          // A version the device reported is checked by the gateway's schema; one that is not
          // semver after all counts as below the floor (fail closed).
          let older = true;
          try {
            older = compareSemver(d.installed_version!, floor) < 0;
          } catch {
            older = true;
          }
          if (older) below.push(d.id);
        }
      }
      below.sort();
      const ids = below.slice(0, p.idLimit);
      return [{
        id,
        provider: 'releases',
        severity: 'high',
        title: "Devices running a release older than their model's floor (the highest minVersion of the model's releases)",
        subject: 'device',
        count: below.length,
        ids,
        truncated: below.length > ids.length,
      }];
    },
  };
}
