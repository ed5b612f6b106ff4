import { isFleetkeyError } from '@fleetkey/protocol';

/** The catalogue code `fn` is refused with, or 'ACCEPTED' when it returns; other errors propagate. */
export function codeOfSync(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (isFleetkeyError(e)) return e.code;
    throw e;
  }
  return 'ACCEPTED';
}

/** The catalogue code `p` is rejected with, or 'ACCEPTED' when it resolves; other errors propagate. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isFleetkeyError(e)) return e.code;
    throw e;
  }
  return 'ACCEPTED';
}
