import type { Catalogue } from './error-spec.js';

export const provisioningErrors = {} as const satisfies Catalogue;
