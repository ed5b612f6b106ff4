export { DeviceUpdater, type AssignedUpdate, type DeviceUpdaterOptions, type InstallHook, type UpdateOutcome } from './updater.js';
export { FileFloorStore, EMPTY_FLOOR, FLOOR_FILE, type FloorState, type FloorStore } from './floor.js';
export { TpmFloorStore, DEFAULT_FLOOR_NV_INDEX } from './tpm-floor.js';
export { UpdateRefusedError } from './refusal.js';
export { downloadTarget, type DownloadTarget } from './download.js';
export type { DeviceTls } from './mtls-fetcher.js';
export { checkBundleUpdates, UPDATES_DIR, type BundleUpdateOptions } from './bundle-updater.js';
