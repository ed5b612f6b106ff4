import { FleetkeyError, type ErrorCode } from '@fleetkey/protocol';

/**
 * An update refused on the device: nothing was installed. `code` is from the catalogue
 * (packages/protocol/src/errors/update-client.ts) and is what the `failed` report carries.
 */
export class UpdateRefusedError extends FleetkeyError {
  constructor(code: ErrorCode, detail: string, cause?: unknown) {
    super(code, { detail, ...(cause === undefined ? {} : { cause }) });
    this.name = 'UpdateRefusedError';
  }
}

export const refuse = (code: ErrorCode, detail: string, cause?: unknown): UpdateRefusedError => new UpdateRefusedError(code, detail, cause);

/**
 * tuf-js (pinned at 4.1.0) signals every refusal with a few error classes whose names are all
 * "Error", and wraps snapshot and targets failures in a RuntimeError whose message embeds the
 * cause: the message is the only stable distinction it offers, so it is matched here, once, and
 * each row is exercised by an attack test (test/updates/tuf-attacks.test.ts). Anything that
 * matches no row is METADATA_INVALID: unknown failures fail closed.
 */
const TUF_MESSAGES: readonly (readonly [RegExp, ErrorCode])[] = [
  // Our fetcher's own refusals, carried through tuf-js's wrappers.
  [/UPDATE_LENGTH_EXCEEDED|Max length reached/, 'UPDATE_LENGTH_EXCEEDED'],
  [/UPDATE_FETCH_FAILED/, 'UPDATE_FETCH_FAILED'],
  // TUF 1.0 §5.3.10, §5.4.4 (timestamp), §5.5.6 (snapshot), §5.6.5 (targets): freeze.
  [/is expired/, 'UPDATE_FREEZE'],
  // §5.4.3, §5.5.5: a version lower than the trusted one (rollback).
  [/is less than current version/, 'UPDATE_ROLLBACK'],
  // §5.5.2-3, §5.6.2-3: the file is not the one the signed snapshot/timestamp names (mix-and-match).
  [/does not match snapshot version|Snapshot version doesn't match timestamp|Missing \S+ in (new )?snapshot|Expected (length|hash)/, 'UPDATE_MIX_AND_MATCH'],
  // §5.3.4-5, §5.4.2, §5.5.3, §5.6.3: not a threshold of trusted keys.
  [/signed by \d+\/\d+ keys|failed to verify|no signature for key|no public key/, 'UPDATE_UNKNOWN_KEY'],
];

export function classifyTufError(e: unknown): UpdateRefusedError {
  if (e instanceof UpdateRefusedError) return e;
  const message = e instanceof Error ? `${e.message}${e.cause instanceof Error ? ` (${e.cause.message})` : ''}` : String(e);
  for (const [re, code] of TUF_MESSAGES) if (re.test(message)) return refuse(code, message.slice(0, 400), e);
  return refuse('UPDATE_METADATA_INVALID', message.slice(0, 400), e);
}
