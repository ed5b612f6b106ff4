import type { Catalogue } from './error-spec.js';

export const cryptoErrors = {} as const satisfies Catalogue;
