import type { Catalogue } from './error-spec.js';

/**
 * Device health on the device side (TPM-sealed storage) and the fleet posture audit. Sealing
 * errors are local to the device (a device never sends them to the server): they tell the
 * device's own supervisor whether the TPM refused because the boot state changed, because the
 * sealed file is not from this TPM, or because the file is not a sealed file at all.
 */
export const postureErrors = {
  TPM_SEAL_POLICY_FAILED: { status: 500, message: 'The sealed data cannot be opened in the current boot state.' },
  TPM_SEAL_WRONG_TPM: { status: 500, message: 'The sealed data was not sealed by this TPM.' },
  TPM_SEAL_CORRUPT: { status: 500, message: 'The sealed data file is malformed.' },
  TPM_UNAVAILABLE: { status: 503, message: 'The TPM could not be used.' },
} as const satisfies Catalogue;
