export * from './keystore/index.js';
export * from './offline/index.js';
export * from './provisioning/index.js';
export * from './connection/index.js';
export * from './sealing/index.js';
export * from './attestation/index.js';
export * from './updates/index.js';
