export {
  OfflineBuffer,
  LOG_FILE,
  type OfflineBufferOptions,
  type BufferedMessage,
  type DrainHandler,
  type OfflineBufferStats,
} from './offline-buffer.js';
export { DATA_KEY_FILE } from './data-key.js';
