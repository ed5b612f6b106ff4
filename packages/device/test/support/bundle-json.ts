import type { DeviceBundle } from '@fleetkey/protocol';

/** The device.json a manufacturing station writes for one test robot; `extra` overrides fields. */
export function bundleJson(
  base: { deviceId: string; attestation: 'x509' | 'symmetric'; enrollmentId: string; provisioningUrl: string; keystore: DeviceBundle['keystore'] },
  extra: Partial<DeviceBundle> = {},
): DeviceBundle {
  return { version: 1, model: 'kuka-kr16', serials: {}, idevidKeyLabel: null, tpmTcti: null, ...base, ...extra };
}
