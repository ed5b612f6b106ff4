import type { Role } from '@fleetkey/protocol';

/**
 * Authorization as named rules in one table (outline's policies): a route names the permission
 * it needs; a role grants a fixed set. Anything not granted is refused.
 */
export const PERMISSIONS = [
  'device:read',
  'device:create',
  'device:status',
  // Changing the evidence bound to a device lets other hardware claim it: admin only (issue 10).
  'device:evidence',
  'name:read',
  'name:write',
  'token:admin',
  'webhook:admin',
  'audit:read',
  'audit:verify',
  'api:read',
  'cert:read',
  'cert:issue',
  // An operational certificate (kind operational) authenticates as the device: admin only; the
  // factory station issues birth certificates.
  'cert:issue-operational',
  'cert:revoke',
  'ca:read',
  'ca:admin',
  'enrollment:read',
  'enrollment:write',
  'enrollment:derive',
  'data:read',
  'command:send',
  'release:read',
  'release:create',
  'release:assign',
  // A new root changes who may sign anything: admin only.
  'updates:root',
  'rollout:read',
  // Creating, pausing, aborting or rolling back a rollout changes what a fleet installs.
  'rollout:write',
  // Attestation policies decide which boot states are trusted and what happens otherwise (issue 13).
  'attestation:policy',
  // Node hosts, pids and internal URLs (issue 15): operators run the cluster, viewers do not need it.
  'cluster:read',
  // GET /metrics: counts and latencies only, no identities (issue 14).
  'metrics:read',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

const READ: Permission[] = ['device:read', 'name:read', 'api:read', 'cert:read', 'ca:read', 'enrollment:read', 'data:read', 'release:read', 'rollout:read'];

const GRANTS: Record<Role, ReadonlySet<Permission>> = {
  admin: new Set(PERMISSIONS),
  operator: new Set<Permission>([...READ, 'device:create', 'device:status', 'name:write', 'audit:read', 'cert:revoke', 'enrollment:write', 'command:send', 'release:create', 'release:assign', 'attestation:policy', 'cluster:read', 'metrics:read', 'rollout:write']),
  viewer: new Set<Permission>(READ),
  // The factory station registers devices (and, with the CA, issues birth certificates); it
  // cannot bind names, change status or read the audit log.
  manufacturing: new Set<Permission>(['device:read', 'device:create', 'api:read', 'cert:read', 'cert:issue', 'ca:read', 'enrollment:read', 'enrollment:derive']),
  // A scraper's token (Prometheus): the metrics and nothing else.
  monitoring: new Set<Permission>(['metrics:read']),
};

export function allows(role: Role, permission: Permission): boolean {
  return GRANTS[role].has(permission);
}
