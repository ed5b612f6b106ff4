import type { Catalogue } from './error-spec.js';

export const caErrors = {} as const satisfies Catalogue;
