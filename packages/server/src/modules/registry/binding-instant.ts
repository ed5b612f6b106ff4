import type { Work } from '../../context/unit-of-work.js';

/**
 * The instant of a binding change. Call it only once the work holds the locks that order every
 * writer of these bindings (the name's row to open one on a name, the device's row to open or
 * close one on a device): the writer that committed before us then shows in the rows read here.
 *
 * - The clock is read now, not at the start of the transaction: a writer that read the clock and
 *   then waited for a lock would otherwise start its binding before the one that held the lock
 *   ended, and device-at/name-at would have two answers for the instants in between.
 * - It is never earlier than any boundary already recorded for the name or the devices, so the
 *   history follows commit order even if the clock steps back or several server processes have
 *   skewed clocks (the app clock, not the database's: it is the clock that stamps messages and
 *   that tests hold still).
 * - It is later than every recorded start: each binding lasts at least a millisecond, so the
 *   starts of a name's (or a device's) bindings are distinct and order its history, and every
 *   binding is the answer of device-at/name-at at its start. Changes to one name within one
 *   millisecond run ahead of the clock by a millisecond each until the clock catches up.
 */
export async function bindingInstant(w: Work, nameIds: readonly string[], deviceIds: readonly string[]): Promise<number> {
  const latest = await w.tx
    .selectFrom('bindings')
    .select((eb) => [eb.fn.max('valid_from').as('from'), eb.fn.max('valid_to').as('to')])
    .where((eb) =>
      eb.or([
        ...(nameIds.length === 0 ? [] : [eb('name_id', 'in', nameIds)]),
        ...(deviceIds.length === 0 ? [] : [eb('device_id', 'in', deviceIds)]),
      ]),
    )
    .executeTakeFirst();
  return Math.max(w.readClock(), Number(latest?.from ?? -1) + 1, Number(latest?.to ?? 0));
}
