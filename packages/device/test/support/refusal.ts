import { isFleetkeyError } from '@fleetkey/protocol';

/** The catalogue code (and the error) `p` is rejected with; fails when it resolves or throws otherwise. */
export async function codeOf(p: Promise<unknown>): Promise<{ code: string; error: unknown }> {
  try {
    await p;
  } catch (e) {
    if (isFleetkeyError(e)) return { code: e.code, error: e };
    throw e;
  }
  throw new Error('expected a rejection');
}
