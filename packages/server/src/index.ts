export { createServer, type CreateOptions, type FleetkeyServer } from './create-server.js';
export { loadConfig, type ConfigSources } from './config/load-config.js';
export type { FleetkeyConfig } from './config/config-schema.js';
export { ADMIN_TOKEN_FILE, SERVER_INFO_FILE } from './config/data-dir.js';
export { openStore, type Store } from './store/open-store.js';
export { checkDestinationAddress, type Resolver, type ResolvedAddress } from './modules/events/webhook-destinations.js';
export { systemContext, type OpContext, type Actor } from './context/op-context.js';
export { relayWorkerBus } from './modules/cluster/ipc-bus.js';
