export * from './api/index.js';
export * from './errors/index.js';
export * from './identity.js';
export * from './mqtt/index.js';
export * from './webhook-signature.js';
export * from './duration.js';
export * from './bundle.js';
export * from './updates/index.js';
