import type { AttestationType } from '@fleetkey/protocol';
import type { Work } from '../../context/unit-of-work.js';
import type { EnrollmentRow } from '../../store/schema.js';
import { refused } from './attestation/method.js';

/**
 * The enrollment a device provisions under: an individual enrollment naming the device wins over
 * any group, and a disabled individual enrollment blocks that device even inside an enabled group.
 * Among groups, the first (oldest) enabled one whose evidence check passes; a disabled group that
 * would accept is returned last so the refusal names the real reason ("disabled").
 */
export async function matchEnrollment(
  w: Work,
  type: AttestationType,
  deviceId: string,
  groupAccepts: (group: EnrollmentRow) => boolean | Promise<boolean>,
): Promise<EnrollmentRow> {
  const individual = await w.tx
    .selectFrom('enrollments')
    .selectAll()
    .where('attestation', '=', type)
    .where('kind', '=', 'individual')
    .where('device_id', '=', deviceId)
    .orderBy('created_at', 'desc')
    .executeTakeFirst();
  if (individual !== undefined) return individual;
  const groups = await w.tx
    .selectFrom('enrollments')
    .selectAll()
    .where('attestation', '=', type)
    .where('kind', '=', 'group')
    .orderBy('enabled', 'desc')
    .orderBy('created_at', 'asc')
    .execute();
  for (const g of groups) if (await groupAccepts(g)) return g;
  throw refused(`no ${type} enrollment accepts device ${deviceId}`);
}
