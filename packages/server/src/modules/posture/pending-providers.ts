import { UnavailableProvider } from './posture-provider.js';

/**
 * Families whose tables belong to modules built on other branches (issue 13: `attestation`;
 * issues on releases: `tuf-repo` / `update-agent`). Until their module registers its own
 * provider under the same name, the report lists these findings under `notChecked`.
 *
 * The attestation module registers `attestation` with these ids (modules/attestation/posture-findings.ts)
 * and the updates module `releases` (modules/updates/posture-findings.ts) when the server listens;
 * `posture.register(provider)` with the same name replaces the placeholder.
 */
export const ATTESTATION_FINDINGS = ['devices.never-attested', 'devices.attestation-stale', 'devices.attestation-failing', 'devices.quarantined'] as const;
export const RELEASE_FINDINGS = ['devices.release-below-floor'] as const;

export const pendingProviders = (): UnavailableProvider[] => [
  // Replaced by modules/attestation/posture-findings.ts when the server listens (the attestation module runs).
  new UnavailableProvider('attestation', ATTESTATION_FINDINGS, 'the attestation module is not running'),
  new UnavailableProvider('releases', RELEASE_FINDINGS, 'the updates module is not running'),
];
