import type { Logger } from 'pino';
import { parseUpdateReport } from '@fleetkey/protocol';
import type { UnitOfWork } from '../../context/unit-of-work.js';
import { UpdateReportRecorder } from './update-report-recorder.js';

export { UpdateReportRecorder, type ReceivedUpdateReport } from './update-report-recorder.js';

/**
 * The server side of device update reports: the gateway hands it the payloads of
 * `devices/{id}/update`; `check` is the frame check (run before the PUBLISH is accepted, so an
 * invalid report is refused with PUBACK 0x99 and nothing is stored), `accept` stores it.
 */
export interface UpdateReports {
  check(payload: Buffer): string | null;
  accept(deviceId: string, payload: Buffer, receivedAt: number): Promise<void>;
  close(): Promise<void>;
}

export function createUpdateReports(deps: { uow: UnitOfWork; logger: Logger }): UpdateReports {
  const recorder = new UpdateReportRecorder(deps.uow, deps.logger);
  return {
    check: (payload) => {
      const r = parseUpdateReport(payload);
      return r.ok ? null : r.reason;
    },
    accept: async (deviceId, payload, receivedAt) => {
      const r = parseUpdateReport(payload);
      // Checked at the frame already; a will delivered at disconnect goes through the same check.
      if (!r.ok) throw new Error(r.reason);
      await recorder.record({ deviceId, report: r.report, receivedAt });
    },
    close: () => recorder.drain(),
  };
}
