import { NAME_PATTERN, type Allocation } from '@fleetkey/protocol';
import type { DeviceRow } from '../../store/schema.js';

const NAME = new RegExp(NAME_PATTERN);

/**
 * The name an enrollment allocates to a device, or null for "pending until an operator binds it".
 * Templates substitute `{model}`, `{serial}` (the first component serial), `{serial.<component>}`,
 * `{id}` and `{id8}`; a result that is not a valid name falls back to pending rather than failing
 * the device.
 */
export function allocateName(allocation: Allocation, device: DeviceRow): string | null {
  switch (allocation.type) {
    case 'pending':
      return null;
    case 'fixed':
      return allocation.name;
    case 'table':
      return allocation.entries[device.id] ?? null;
    case 'template': {
      const serials = device.serials === null ? {} : (JSON.parse(device.serials) as Record<string, string>);
      const first = Object.values(serials)[0];
      let missing = false;
      const out = allocation.template
        .replace(/\{([a-z0-9.]+)\}/g, (_m, key: string) => {
          const v =
            key === 'model' ? device.model : key === 'id' ? device.id : key === 'id8' ? device.id.slice(0, 8) : key === 'serial' ? first : key.startsWith('serial.') ? serials[key.slice(7)] : undefined;
          if (v === undefined || v === null) missing = true;
          return v ?? '';
        })
        .toLowerCase();
      return missing || !NAME.test(out) ? null : out;
    }
  }
}
