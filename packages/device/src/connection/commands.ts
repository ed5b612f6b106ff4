import { parseCommandTopic } from '@fleetkey/protocol';
import type { CommandHandler, DeviceCommand } from './types.js';

/**
 * Reads a cloud → device PUBLISH: the topic must be this device's command topic and the payload
 * `{id, type, payload, expiresAt}` with `id` equal to the topic's command id (a payload cannot
 * redirect its result to another command).
 */
export function parseCommand(deviceId: string, topic: string, payload: Buffer): { command: DeviceCommand } | { problem: string } {
  const t = parseCommandTopic(topic);
  if (t === undefined || t.deviceId !== deviceId) return { problem: `message on an unexpected topic ${topic}` };
  let raw: Partial<DeviceCommand>;
  try {
    raw = JSON.parse(payload.toString('utf8')) as Partial<DeviceCommand>;
  } catch {
    return { problem: `command ${t.commandId} is not JSON` };
  }
  if (typeof raw !== 'object' || raw === null || raw.id !== t.commandId || typeof raw.type !== 'string') {
    return { problem: `command ${t.commandId} has no matching id or no type` };
  }
  return { command: { id: raw.id, type: raw.type, payload: raw.payload ?? null, expiresAt: typeof raw.expiresAt === 'string' ? raw.expiresAt : null } };
}

/**
 * Runs a handler and publishes what it returns. A throwing handler answers `{ok:false}` with a
 * fixed text: the exception's message may hold device internals that do not belong in the cloud.
 */
export function runHandler(
  handler: CommandHandler,
  command: DeviceCommand,
  send: (result: unknown) => Promise<unknown>,
  warn: (w: { message: string; error?: unknown }) => void,
): void {
  void Promise.resolve()
    .then(() => handler(command))
    .then(
      (result) => (result === undefined ? undefined : send(result)),
      (error: unknown) => {
        warn({ message: `command handler failed for ${command.id}`, error });
        return send({ ok: false, error: 'handler failed' });
      },
    )
    .catch((error: unknown) => warn({ message: `cannot send the result of ${command.id}`, error }));
}
