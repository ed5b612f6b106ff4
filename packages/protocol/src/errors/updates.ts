import type { Catalogue } from './error-spec.js';

/**
 * Server-side refusals of the update repository (TUF 1.0 image repository, Uptane director,
 * releases). Device-side verification refusals live in update-client.ts.
 */
export const updatesErrors = {
  REPO_NOT_INITIALISED: { status: 409, message: 'The update repository has no root metadata yet; submit a signed root first.' },
  REPO_METADATA_INVALID: { status: 400, message: 'The metadata document is not valid TUF 1.0 metadata for this role.' },
  REPO_SIGNATURE_THRESHOLD: { status: 403, message: 'The metadata is not signed by a threshold of the keys the root trusts for this role.' },
  REPO_VERSION_ROLLBACK: { status: 409, message: 'The metadata version is not greater than the current one.' },
  REPO_METADATA_EXPIRED: { status: 400, message: 'The metadata is already expired or expires too soon.' },
  REPO_ARTIFACT_TOO_LARGE: { status: 413, message: 'The artifact is larger than its declared length or the size cap.' },
  REPO_ARTIFACT_MISMATCH: { status: 400, message: 'The uploaded artifact does not match its declared length or sha256.' },
  REPO_ARTIFACT_MISSING: { status: 409, message: 'A target the metadata lists has no stored artifact with that length and sha256.' },
  REPO_RANGE_NOT_SATISFIABLE: { status: 416, message: 'The requested byte range is not satisfiable.' },
  RELEASE_NOT_FOUND: { status: 404, message: 'No such release.' },
  RELEASE_EXISTS: { status: 409, message: 'A release with this model and version, or this target name, exists already.' },
  RELEASE_VERSION_INVALID: { status: 400, message: 'The release version is not a valid semantic version.' },
  RELEASE_MODEL_MISMATCH: { status: 409, message: 'The release is for another device model than the device bound to the name.' },
} as const satisfies Catalogue;
