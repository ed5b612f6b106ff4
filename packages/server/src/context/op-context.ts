import type { Role } from '@fleetkey/protocol';

export type Actor =
  | { readonly kind: 'token'; readonly tokenId: string; readonly role: Role; readonly label: string }
  | { readonly kind: 'system'; readonly label: string }
  | { readonly kind: 'anonymous'; readonly label: string };

/**
 * Who is doing what, on whose behalf: every mutation takes one, and its audit entry is written
 * from it in the mutation's own transaction.
 */
export interface OpContext {
  readonly actor: Actor;
  readonly requestId: string | null;
  readonly remoteAddress: string | null;
}

export function systemContext(label = 'system'): OpContext {
  return { actor: { kind: 'system', label }, requestId: null, remoteAddress: null };
}
