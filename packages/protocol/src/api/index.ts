export * from './common.js';
export * from './operators.js';
export * from './registry.js';
export * from './provisioning.js';
export * from './updates.js';
export * from './posture.js';
export * from './attestation.js';
export * from './cluster.js';
