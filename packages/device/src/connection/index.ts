export { connect, OFFLINE_DIR } from './connect.js';
export { DeviceConnection } from './device-connection.js';
export { ConnectionStoppedError, type ConnectOptions, type DeviceCommand, type CommandHandler, type SendResult, type StopInfo, type DeviceConnectionEvents } from './types.js';
export type { StopReason } from './stop-reasons.js';
export type { AuthMode } from './credentials.js';
export { renewalDueAt } from './renewal.js';
