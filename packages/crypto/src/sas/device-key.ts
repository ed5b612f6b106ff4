import { hmacSha256 } from '../primitives/hmac-hkdf.js';

/**
 * A group enrollment's per-device key: HMAC-SHA256(groupKey, deviceId). The factory or the
 * server derives it; only the derived key ships on the device, so extracting one device's key
 * never yields the group key or another device's key.
 */
export function deriveDeviceKey(groupKey: Uint8Array, deviceId: string): Buffer {
  if (groupKey.length < 32) throw new RangeError('group key must be at least 32 bytes');
  if (deviceId.length === 0) throw new TypeError('device id must not be empty');
  return hmacSha256(groupKey, Buffer.from(deviceId, 'utf8'));
}
