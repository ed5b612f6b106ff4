/** Operator roles (DESIGN.md §4). */
export const ROLES = ['admin', 'operator', 'viewer', 'manufacturing', 'monitoring'] as const;
export type Role = (typeof ROLES)[number];

/** Device lifecycle (DESIGN.md §1): manufactured → provisioned → active ⇄ suspended → revoked | retired. */
export const DEVICE_STATUSES = ['manufactured', 'provisioned', 'active', 'suspended', 'revoked', 'retired'] as const;
export type DeviceStatus = (typeof DEVICE_STATUSES)[number];

/**
 * Logical names: lowercase, `[a-z0-9][a-z0-9._-]{0,127}` (DESIGN.md §1). The one length limit:
 * creation, renames and every route that takes a name in its path use it (the operator
 * listener's router accepts path parameters longer than this, so a legal name is always addressable).
 */
export const NAME_MAX_LENGTH = 128;
export const NAME_PATTERN = `^[a-z0-9][a-z0-9._-]{0,${NAME_MAX_LENGTH - 1}}$`;

/** Any RFC 9562 UUID in its canonical lowercase text form. Fleetkey mints v4 from a CSPRNG. */
export const UUID_PATTERN = '^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$';

/** Tag keys and values: short, printable, no separators that would confuse `key=value` parsing. */
export const TAG_KEY_PATTERN = '^[a-z][a-z0-9_.-]{0,63}$';
export const TAG_VALUE_PATTERN = '^[A-Za-z0-9_.:/@+-]{0,128}$';

/** Prefix that makes a leaked operator token recognisable to secret scanners. */
export const API_TOKEN_PREFIX = 'fkt_';

export const EVENT_TYPES = [
  'device.created',
  'device.status_changed',
  'device.evidence_mismatch',
  'device.evidence_reset',
  'name.created',
  'name.bound',
  'name.unbound',
  'name.rebound',
  'name.renamed',
  'certificate.issued',
  'certificate.superseded',
  'certificate.revoked',
  'device.connected',
  'device.disconnected',
  'command.completed',
  'rollout.created',
  'rollout.wave_started',
  'rollout.paused',
  'rollout.resumed',
  'rollout.aborted',
  'rollout.completed',
  'rollout.rolled_back',
  'rollout.device_outcome',
  'release.created',
  'release.assigned',
  'release.unassigned',
  'updates.root_rotated',
  'updates.targets_published',
  // Measured-boot attestation (issue 13).
  'device.attestation_failed',
  'device.attestation_stale',
  'device.quarantined',
  'device.released',
  'device.update_reported',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** RFC 5280 §5.3.1 CRLReason names accepted for revocation (removeFromCRL is for delta CRLs only). */
export const REVOCATION_REASONS = [
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  'privilegeWithdrawn',
  'aACompromise',
] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

/** Attestation methods an enrollment can name (the base refuses any other). */
export const ATTESTATION_TYPES = ['x509', 'symmetric', 'tpm'] as const;
export type AttestationType = (typeof ATTESTATION_TYPES)[number];
