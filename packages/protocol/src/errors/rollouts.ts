import type { Catalogue } from './error-spec.js';

/** Staged rollouts (issue 12 part C): refusals of the operator routes under /v1/rollouts. */
export const rolloutErrors = {
  ROLLOUT_NOT_FOUND: { status: 404, message: 'No such rollout.' },
  ROLLOUT_RELEASE_NOT_FOUND: { status: 404, message: 'The release named by the rollout does not exist.' },
  ROLLOUT_SELECTOR_INVALID: { status: 400, message: "The selection must be 'name:<glob>' or 'tag:<key>=<value>'." },
  ROLLOUT_SELECTION_EMPTY: { status: 422, message: 'The selection resolves to no name.' },
  ROLLOUT_WAVES_INVALID: { status: 400, message: 'Waves must be increasing percentages ending at 100.' },
  ROLLOUT_HEALTH_RULE_INVALID: { status: 400, message: "The health rule must read 'diagnostics.<field> <op> <number>'." },
  ROLLOUT_NAME_BUSY: { status: 409, message: 'A selected name is already in another active rollout.' },
  ROLLOUT_STATE_INVALID: { status: 409, message: 'The rollout is not in a state that allows this operation.' },
} as const satisfies Catalogue;
