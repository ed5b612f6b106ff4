import type { DeviceStatus, DeviceStatusAction } from '@fleetkey/protocol';

/**
 * The lifecycle of DESIGN.md §1 as one table: manufactured → provisioned → active ⇄ suspended →
 * revoked | retired. Revoked and retired are terminal: a device id is never brought back, so a
 * stolen or decommissioned unit cannot be re-admitted by a status flip.
 */
const FROM: Record<DeviceStatusAction, readonly DeviceStatus[]> = {
  suspend: ['manufactured', 'provisioned', 'active'],
  resume: ['suspended'],
  revoke: ['manufactured', 'provisioned', 'active', 'suspended'],
  retire: ['manufactured', 'provisioned', 'active', 'suspended'],
};

const TO: Record<Exclude<DeviceStatusAction, 'resume'>, DeviceStatus> = {
  suspend: 'suspended',
  revoke: 'revoked',
  retire: 'retired',
};

/** Returns the next status, or null when the action is not allowed from `current`. */
export function nextStatus(current: DeviceStatus, action: DeviceStatusAction, beforeSuspend: DeviceStatus | null): DeviceStatus | null {
  if (!FROM[action].includes(current)) return null;
  // Resume returns to where suspension found the device, so suspending a device that was never
  // online does not make it "active" when lifted.
  if (action === 'resume') return beforeSuspend ?? 'active';
  return TO[action];
}

/** A device in these states must not gain a binding. */
export const UNBINDABLE: readonly DeviceStatus[] = ['revoked', 'retired'];
export const TERMINAL: readonly DeviceStatus[] = ['revoked', 'retired'];
