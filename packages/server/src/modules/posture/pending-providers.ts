import { UnavailableProvider } from './posture-provider.js';

/**
 * Families whose tables belong to modules built on other branches (issue 13: `attestation`;
 * issues on releases: `tuf-repo` / `update-agent`). Until their module registers its own
 * provider under the same name, the report lists these findings under `notChecked`.
 *
 * TODO(merge): the attestation module registers `attestation` with these ids (devices with no
 * attestation, last good attestation older than the policy's maximum age, last verdict failing,
 * quarantined); the releases module registers `releases` (installed version below the fleet's
 * floor). `createPostureModule(...).register(provider)` replaces the placeholder.
 */
export const ATTESTATION_FINDINGS = ['devices.never-attested', 'devices.attestation-stale', 'devices.attestation-failing', 'devices.quarantined'] as const;
export const RELEASE_FINDINGS = ['devices.release-below-floor'] as const;

export const pendingProviders = (): UnavailableProvider[] => [
  new UnavailableProvider('attestation', ATTESTATION_FINDINGS, 'the attestation module is not part of this build'),
  new UnavailableProvider('releases', RELEASE_FINDINGS, 'the release module is not part of this build'),
];
