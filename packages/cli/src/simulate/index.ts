export { Fleet, type FleetOptions } from './fleet.js';
export { listBundles, provisionMissing, type SimBundle } from './bundles.js';
export { SimStats, percentile, summarize, type SimSummary } from './stats.js';
export { parseDuration } from './parse.js';
