import type { Catalogue } from './error-spec.js';

export const gatewayErrors = {} as const satisfies Catalogue;
