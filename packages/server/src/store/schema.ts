/**
 * Row types of the store. Times are epoch milliseconds (BIGINT on PostgreSQL, INTEGER on
 * SQLite): one representation on both dialects, cheap to index and compare. JSON columns are
 * TEXT on both so the same code reads them.
 */
import type { Generated } from 'kysely';

export interface DeviceRow {
  id: string;
  model: string | null;
  serials: string | null; // JSON object component → serial
  hw_fingerprint: string | null;
  status: string;
  status_reason: string | null;
  /** The status suspension interrupted, restored by resume. */
  prior_status: string | null;
  created_at: number;
  updated_at: number;
  /** Last version the device reported `installed` (migration 011); null until then. */
  installed_version: string | null;
  installed_release_id: string | null;
  installed_at: number | null;
}

/** One `devices/{id}/update` report (migration 011). */
export interface DeviceUpdateReportRow {
  id: string;
  device_id: string;
  name_id: string | null;
  release_id: string;
  version: string;
  phase: string;
  code: string | null;
  progress: number | null;
  received_at: number;
}

export interface NameRow {
  id: string;
  name: string;
  tags: string; // JSON object
  created_at: number;
  updated_at: number;
}

/** Every name string ever used, current or alias: a name string is never reused. */
export interface NameKeyRow {
  key: string;
  name_id: string;
  kind: 'current' | 'alias';
  created_at: number;
  retired_at: number | null;
}

export interface BindingRow {
  id: string;
  name_id: string;
  device_id: string;
  valid_from: number;
  valid_to: number | null;
  bind_reason: string | null;
  bind_actor: string;
  unbind_reason: string | null;
  unbind_actor: string | null;
}

export interface ApiTokenRow {
  id: string;
  name: string | null;
  role: string;
  token_hash: string;
  last_four: string;
  created_at: number;
  created_by: string;
  revoked_at: number | null;
  last_used_at: number | null;
}

export interface ConsoleSessionRow {
  id: string;
  /** SHA-256 (hex) of the cookie secret; the secret itself is never stored. */
  secret_hash: string;
  token_id: string;
  created_at: number;
  expires_at: number;
}

export interface AuditRow {
  seq: number;
  at: number;
  actor: string;
  action: string;
  subject: string | null;
  outcome: string;
  code: string | null;
  request_id: string | null;
  detail: string | null;
  prev_hash: string;
  hash: string;
}

export interface AuditHeadRow {
  id: number;
  seq: number;
  hash: string;
}

export interface EventRow {
  id: string;
  type: string;
  subject: string;
  payload: string;
  created_at: number;
}

export interface WebhookRow {
  id: string;
  url: string;
  events: string; // JSON array
  secret_sealed: string;
  created_at: number;
  created_by: string;
  removed_at: number | null;
}

export interface DeliveryRow {
  id: string;
  webhook_id: string;
  event_id: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: number;
  last_status: number | null;
  last_error: string | null;
  delivered_at: number | null;
  created_at: number;
}

export interface CaAuthorityRow {
  id: string;
  role: 'root' | 'issuing' | 'manufacturing';
  status: 'active' | 'retiring' | 'retired';
  keystore: 'file' | 'pkcs11' | 'offline';
  key_ref: string | null;
  certificate_pem: string;
  subject: string;
  ski: string;
  not_before: number;
  not_after: number;
  created_at: number;
  retired_at: number | null;
}

export interface CertificateRow {
  serial: string;
  fingerprint: string;
  device_id: string;
  kind: 'idevid' | 'operational';
  issuer_id: string;
  method: string;
  public_key_sha256: string;
  not_before: number;
  not_after: number;
  status: 'valid' | 'superseded' | 'revoked';
  superseded_by: string | null;
  grace_until: number | null;
  revoked_at: number | null;
  revocation_reason: string | null;
  der: string;
  created_at: number;
}

export interface CrlRow {
  issuer_id: string;
  crl_number: number;
  this_update: number;
  next_update: number;
  der: string;
}

export interface EnrollmentRow {
  id: string;
  label: string;
  kind: 'individual' | 'group';
  attestation: 'x509' | 'symmetric' | 'tpm';
  device_id: string | null;
  idevid_fingerprint: string | null;
  ek_sha256: string | null;
  trust_pem: string | null;
  secret_sealed: string | null;
  allocation: string; // JSON Allocation
  tags: string; // JSON
  validity: string;
  reprovisioning: 'keep' | 'reset' | 'never';
  enabled: number;
  expires_at: number | null;
  max_devices: number | null;
  created_at: number;
  updated_at: number;
  decision_url: string | null;
  decision_secret_sealed: string | null;
  /** How an outside anchor's revocations are checked (migration 008). */
  revocation: 'require' | 'best-effort' | 'none';
  crl_urls: string; // JSON string[]
}

export interface EnrollmentCrlRow {
  id: string;
  enrollment_id: string;
  /** SHA-256 fingerprint of the CA certificate that signed it: an enrollment anchor, or a CA chaining to one. */
  issuer_sha256: string;
  /** SHA-256 of the issuingDistributionPoint value, '' for a CRL of full scope. */
  scope: string;
  issuer: string;
  der: string; // base64
  this_update: number;
  next_update: number;
  crl_number: string | null;
  entries: number;
  source: 'upload' | 'fetch';
  url: string | null;
  created_at: number;
  updated_at: number;
}

export interface ProvisioningRecordRow {
  device_id: string;
  enrollment_id: string;
  method: string;
  first_at: number;
  last_at: number;
  count: number;
  last_serial: string;
}

export interface ChallengeRow {
  id: string;
  /** `sas`: a symmetric provisioning token's id, kept until it expires (single use across restarts). */
  kind: 'nonce' | 'tpm' | 'sas';
  device_id: string | null;
  enrollment_id: string | null;
  secret_sha256: string | null;
  expires_at: number;
  used_at: number | null;
  created_at: number;
  /** JSON Evidence the TPM challenge was issued for (tpm only). */
  evidence: string | null;
}

export interface DeviceEvidenceRow {
  id: string;
  device_id: string;
  method: 'x509' | 'symmetric' | 'tpm';
  evidence_key: string;
  identity: string; // canonical JSON, compared exactly
  seen: string | null; // JSON
  enrollment_id: string;
  recorded_at: number;
  last_seen_at: number;
  reset_at: number | null;
  reset_reason: string | null;
  reset_actor: string | null;
  /** TPM2B_PUBLIC of the AK (base64), TPM evidence only (migration 013). */
  ak_public: string | null;
}

export type AttestationAction = 'quarantine' | 'revoke' | 'alert';

export interface AttestationPolicyRow {
  id: string;
  scope: 'enrollment' | 'model';
  scope_key: string;
  pcrs: string;
  reference: string | null;
  event_log: string | null;
  interval_ms: number;
  max_age_ms: number;
  on_failure: AttestationAction;
  on_stale: AttestationAction;
  require_on_connect: number;
  created_at: number;
  updated_at: number;
}

export interface DeviceAttestationRow {
  device_id: string;
  status: 'trusted' | 'failed' | 'stale';
  policy_id: string | null;
  last_trusted_at: number | null;
  last_result_at: number;
  due_at: number;
  reason: string | null;
  quarantined_at: number | null;
  quarantine_reason: string | null;
}

export interface AttestationRow {
  id: string;
  device_id: string;
  at: number;
  verdict: 'trusted' | 'failed' | 'stale';
  code: string | null;
  reason: string | null;
  policy_id: string | null;
  pcrs: string | null;
  action: string | null;
}

export interface DiagnosticRow {
  /** Assigned by the database (rowid / identity). */
  id: Generated<number>;
  name_id: string | null;
  name: string | null;
  device_id: string;
  received_at: number;
  payload: string;
}

export interface TelemetryRow {
  /** Assigned by the database (rowid / identity). */
  id: Generated<number>;
  device_id: string;
  name_id: string | null;
  received_at: number;
  payload: string;
}

export interface CommandRow {
  id: string;
  name_id: string;
  name: string;
  type: string;
  payload: string;
  status: 'pending' | 'delivered' | 'completed' | 'expired';
  created_at: number;
  created_by: string;
  expires_at: number;
  delivered_to: string | null;
  delivered_at: number | null;
  acked_at: number | null;
  result: string | null;
  completed_at: number | null;
}

/** A staged rollout (migration 012): plan and state; ratios in basis points. */
export interface RolloutRow {
  id: string;
  release_id: string;
  selector: string;
  waves: string; // JSON number[]
  wave_sizes: string; // JSON number[]
  max_per_minute: number;
  abort_failure_bp: number;
  success_bp: number;
  min_executed: number;
  timeout_ms: number;
  health_rule: string | null;
  status: string;
  current_wave: number;
  abort_reason: string | null;
  created_by: string;
  created_at: number;
  updated_at: number;
}

/** One name of a rollout and what happened to it. */
export interface RolloutTargetRow {
  rollout_id: string;
  name_id: string;
  name: string;
  wave: number;
  position: number;
  status: string;
  previous_release_id: string | null;
  device_id: string | null;
  code: string | null;
  assigned_at: number | null;
  outcome_at: number | null;
}

/** A release: one artifact (a TUF target of the image repository) for one model and version. */
export interface ReleaseRow {
  id: string;
  model: string;
  version: string;
  min_version: string | null;
  target_name: string;
  sha256: string;
  length: number;
  signed_by: string;
  targets_version: number;
  created_at: number;
  created_by: string;
}

/** Which release a name should run: the one place, set by an operator or a rollout. */
export interface DesiredReleaseRow {
  name_id: string;
  release_id: string;
  source: 'operator' | 'rollout';
  rollout_id: string | null;
  updated_at: number;
  updated_by: string;
}

export interface TufMetadataRow {
  repo: 'image' | 'director';
  role: 'root' | 'targets' | 'snapshot' | 'timestamp';
  version: number;
  body: string;
  expires_at: number;
  created_at: number;
}

export interface TufOnlineKeyRow {
  key_id: string;
  repo: 'image' | 'director';
  role: 'targets' | 'snapshot' | 'timestamp';
  public_key: string;
  sealed_private: string;
  created_at: number;
  retired_at: number | null;
}

export interface DirectorDeviceRow {
  device_id: string;
  counter: number;
  name_id: string | null;
  release_id: string | null;
  timestamp_body: string;
  snapshot_body: string;
  targets_body: string;
  expires_at: number;
  signed_at: number;
  /** The generation before `counter` (migration 018): served while a device may still be reading it. */
  prev_counter: number | null;
  prev_snapshot_body: string | null;
  prev_targets_body: string | null;
}

export interface Database {
  devices: DeviceRow;
  names: NameRow;
  name_keys: NameKeyRow;
  bindings: BindingRow;
  api_tokens: ApiTokenRow;
  console_sessions: ConsoleSessionRow;
  audit_log: AuditRow;
  audit_head: AuditHeadRow;
  events: EventRow;
  webhooks: WebhookRow;
  webhook_deliveries: DeliveryRow;
  ca_authorities: CaAuthorityRow;
  certificates: CertificateRow;
  crls: CrlRow;
  enrollments: EnrollmentRow;
  enrollment_crls: EnrollmentCrlRow;
  provisioning_records: ProvisioningRecordRow;
  provisioning_challenges: ChallengeRow;
  device_evidence: DeviceEvidenceRow;
  attestation_policies: AttestationPolicyRow;
  attestation_nonces: { nonce_sha256: string; device_id: string; expires_at: number; used_at: number | null; created_at: number };
  device_attestation: DeviceAttestationRow;
  attestations: AttestationRow;
  device_update_reports: DeviceUpdateReportRow;
  diagnostics: DiagnosticRow;
  telemetry: TelemetryRow;
  device_state: { device_id: string; payload: string; updated_at: number };
  commands: CommandRow;
  rollouts: RolloutRow;
  rollout_targets: RolloutTargetRow;
  device_presence: { device_id: string; connected: number; since: number; remote_address: string | null; node_id: string | null };
  releases: ReleaseRow;
  desired_releases: DesiredReleaseRow;
  tuf_metadata: TufMetadataRow;
  tuf_online_keys: TufOnlineKeyRow;
  director_devices: DirectorDeviceRow;
  cluster_nodes: ClusterNodeRow;
  rate_buckets: RateBucketRow;
}

/** A node of the cluster and its last heartbeat (migration 016). */
export interface ClusterNodeRow {
  id: string;
  host: string;
  pid: number;
  endpoints: string;
  started_at: number;
  heartbeat_at: number;
  stopped_at: number | null;
  stop_reason: string | null;
}

/** A token bucket shared by the nodes of a cluster (migration 017). */
export interface RateBucketRow {
  bucket: string;
  tokens: number;
  updated_at: number;
  granted: number;
}
