import { spawn } from 'node:child_process';
import { checkBundleUpdates, type AssignedUpdate, type DeviceConnection, type UpdateOutcome } from '@fleetkey/device';

export interface AgentUpdateOptions {
  readonly bundle: string;
  readonly installCommand: string;
  readonly intervalMs: number;
  readonly floor: 'auto' | 'file' | 'tpm';
  readonly passphrase?: Uint8Array;
  readonly event: (data: Record<string, unknown>) => void;
}

/** Command type that makes the agent check for updates now (its result is the outcome). */
export const UPDATE_CHECK_COMMAND = 'update.check';

/**
 * Runs the install command on a verified file: `/bin/sh -c "<CMD> \"$FLEETKEY_UPDATE_FILE\""`,
 * with FLEETKEY_UPDATE_FILE, FLEETKEY_UPDATE_VERSION and FLEETKEY_UPDATE_RELEASE in its
 * environment. Exit 0 is success; anything else is reported `failed` (UPDATE_INSTALL_FAILED).
 * The file is removed by the SDK once the command returns.
 */
export function installWith(command: string): (file: string, u: AssignedUpdate) => Promise<void> {
  return (file, u) =>
    new Promise((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', `${command} "$FLEETKEY_UPDATE_FILE"`], {
        stdio: ['ignore', 'inherit', 'inherit'],
        env: { ...process.env, FLEETKEY_UPDATE_FILE: file, FLEETKEY_UPDATE_VERSION: u.version, FLEETKEY_UPDATE_RELEASE: u.releaseId },
      });
      child.on('error', reject);
      child.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`install command exited with ${signal ?? String(code)}`))));
    });
}

/**
 * The agent's update loop: a check at start, then every interval, and whenever the cloud sends an
 * `update.check` command. Checks never overlap; reports go out on the agent's MQTT connection
 * (buffered on disk while offline).
 */
export function startUpdateLoop(conn: DeviceConnection, o: AgentUpdateOptions): { checkNow(): Promise<UpdateOutcome>; stop(): Promise<void> } {
  let running: Promise<UpdateOutcome> | null = null;
  let stopped = false;
  const checkNow = (): Promise<UpdateOutcome> => {
    if (running !== null) return running;
    running = checkBundleUpdates(o.bundle, {
      install: installWith(o.installCommand),
      report: (r) => conn.sendUpdateReport(r),
      floor: o.floor,
      ...(o.passphrase === undefined ? {} : { passphrase: o.passphrase }),
    })
      .catch((e: unknown): UpdateOutcome => ({ status: 'failed', code: (e as { code?: string }).code ?? 'INTERNAL', detail: e instanceof Error ? e.message : String(e), update: null }))
      .then((out) => {
        o.event({ event: 'update', ...summary(out) });
        if (out.status === 'failed') process.stderr.write(`fleetkey: update refused: ${out.code}: ${out.detail}\n`);
        return out;
      })
      .finally(() => {
        running = null;
      });
    return running;
  };
  const timer = setInterval(() => {
    if (!stopped) void checkNow();
  }, o.intervalMs);
  timer.unref();
  void checkNow();
  return {
    checkNow,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

export function summary(out: UpdateOutcome): Record<string, unknown> {
  switch (out.status) {
    case 'installed':
      return { status: out.status, version: out.update.version, releaseId: out.update.releaseId };
    case 'failed':
      return { status: out.status, code: out.code, ...(out.update === null ? {} : { version: out.update.version, releaseId: out.update.releaseId }) };
    case 'current':
      return { status: out.status, version: out.version };
    default:
      return { status: out.status };
  }
}
