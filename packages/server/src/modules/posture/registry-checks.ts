import type { SqlCheck } from './posture-provider.js';

/** Devices that should be reachable by a name: provisioned into service and not suspended, revoked or retired. */
const IN_SERVICE = ['provisioned', 'active'] as const;

/** Registry hygiene: the name ↔ device bindings (an open binding has valid_to null). */
export const registryChecks: readonly SqlCheck[] = [
  {
    id: 'devices.without-name',
    severity: 'low',
    title: 'Devices in service that no name points to (their data and commands have no address)',
    subject: 'device',
    // Anti-join on the partial unique index bindings_one_open_per_device (device_id where valid_to is null).
    query: (db) =>
      db
        .selectFrom('devices as d')
        .select('d.id as id')
        .where('d.status', 'in', IN_SERVICE)
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom('bindings as b').select('b.id').whereRef('b.device_id', '=', 'd.id').where('b.valid_to', 'is', null))),
        ),
  },
  {
    id: 'names.without-device',
    severity: 'info',
    title: 'Names that hold no device (commands sent to them wait for a device)',
    subject: 'name',
    // Anti-join on bindings_one_open_per_name (name_id where valid_to is null).
    query: (db) =>
      db
        .selectFrom('names as n')
        .select('n.name as id')
        .where(({ not, exists, selectFrom }) =>
          not(exists(selectFrom('bindings as b').select('b.id').whereRef('b.name_id', '=', 'n.id').where('b.valid_to', 'is', null))),
        ),
  },
];
