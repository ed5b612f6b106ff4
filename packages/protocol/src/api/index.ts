export * from './common.js';
export * from './operators.js';
export * from './registry.js';
export * from './provisioning.js';
export * from './rollouts.js';
export * from './updates.js';
