export * from './semver.js';
export * from './tuf-metadata.js';
