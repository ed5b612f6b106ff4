/**
 * Reads a stored device payload. The gateway stores only JSON, but a row written before that was
 * enforced (a Will used to skip the check, issue 11) or by hand must not turn every later read of
 * that name or device into a 500: what is not JSON reads as null.
 */
export function storedPayload(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}
