import type { Catalogue } from './error-spec.js';

/**
 * Device-side refusals of an update (the SDK updater, packages/device/src/updates). Each one
 * means nothing was installed; the device reports it in a `failed` update report
 * (`devices/{id}/update`) so the server and the rollout engine see the same code.
 * The status is what the operator plane would answer if it ever relayed one (422: the device
 * understood the metadata and refused it).
 */
export const updateClientErrors = {
  UPDATE_ROLLBACK: { status: 422, message: 'The update metadata is older than metadata the device already trusts (rollback).' },
  UPDATE_FREEZE: { status: 422, message: 'The update metadata has expired (freeze).' },
  UPDATE_MIX_AND_MATCH: { status: 422, message: 'The update metadata does not match the versions or hashes its snapshot names (mix-and-match).' },
  UPDATE_HASH_MISMATCH: { status: 422, message: 'The downloaded file does not match the signed hash.' },
  UPDATE_LENGTH_EXCEEDED: { status: 422, message: 'The server sent more data than the signed length (endless data).' },
  UPDATE_UNKNOWN_KEY: { status: 422, message: 'The update metadata is not signed by a threshold of trusted keys.' },
  UPDATE_METADATA_INVALID: { status: 422, message: 'The update metadata is malformed.' },
  UPDATE_DIRECTOR_MISMATCH: { status: 422, message: 'The director and the image repository disagree on the target.' },
  UPDATE_NOT_FOR_THIS_DEVICE: { status: 422, message: 'The director metadata names another device.' },
  UPDATE_BELOW_FLOOR: { status: 422, message: 'The assigned version is below the device\'s anti-rollback floor.' },
  UPDATE_FLOOR_INVALID: { status: 422, message: 'The device\'s anti-rollback floor is missing, tampered with or out of step with its counter.' },
  UPDATE_FETCH_FAILED: { status: 503, message: 'The update server could not be reached or answered with an error.' },
  UPDATE_INSTALL_FAILED: { status: 422, message: 'The install hook failed.' },
} as const satisfies Catalogue;
