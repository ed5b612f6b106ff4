import type { OpContext } from '@fleetkey/server';

export const opCtx = (label = 'test-operator'): OpContext => ({ actor: { kind: 'system', label }, requestId: null, remoteAddress: null });

/** Awaits a promise expected to be refused and returns its catalogue code. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    throw e;
  }
  throw new Error('expected a refusal, but the operation succeeded');
}
