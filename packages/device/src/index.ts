export * from './keystore/index.js';
export * from './offline/index.js';
