export { Fleet, type FleetObserver, type FleetOptions, type SimDevice } from './fleet.js';
export { provisionMissing, selectBundles, type SimBundle } from './bundles.js';
export { SimStats, percentile, distribution } from './stats.js';
export { summarize, type SimSummary } from './summary.js';
export { type StormSummary } from './storm.js';
export { type ChurnSummary } from './churn.js';
export { Interrupt, runSimulation, type SimulationPlan } from './run.js';
export { parseDuration } from './parse.js';
