import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  commandSubscriptionFilters,
  formatCommandTopic,
  formatDeviceTopic,
  isOwnCommandFilter,
  parseCommandTopic,
  parseDeviceTopic,
} from '@fleetkey/protocol';

const A = randomUUID();
const B = randomUUID();

describe('MQTT topic grammar (packages/protocol/src/mqtt/topics.ts)', () => {
  it.each([
    ['empty', ''],
    ['root only', 'devices/'],
    ['uppercase id', `devices/${A.toUpperCase()}/state`],
    ['not a uuid', 'devices/not-a-uuid-not-a-uuid-not-a-uuid-xx/state'],
    ['the nil uuid (no version)', 'devices/00000000-0000-0000-0000-000000000000/state'],
    ['unknown kind', `devices/${A}/config`],
    ['trailing slash', `devices/${A}/state/`],
    ['leading slash', `/devices/${A}/state`],
    ['command topic itself', `devices/${A}/commands/c1`],
    ['empty command id', `devices/${A}/commands//result`],
    ['wildcard command id', `devices/${A}/commands/+/result`],
    ['nested command id', `devices/${A}/commands/a/b/result`],
    ['over-long command id', `devices/${A}/commands/${'a'.repeat(65)}/result`],
  ])('fail: %s is not a device topic', (_what, topic) => {
    expect(parseDeviceTopic(topic)).toBeUndefined();
  });

  it('parses and formats the four device → cloud topics', () => {
    for (const kind of ['diagnostics', 'telemetry', 'state'] as const) {
      expect(parseDeviceTopic(formatDeviceTopic(A, kind))).toEqual({ deviceId: A, kind });
    }
    expect(parseDeviceTopic(formatDeviceTopic(A, 'command_result', 'c-1.x_y'))).toEqual({ deviceId: A, kind: 'command_result', commandId: 'c-1.x_y' });
    expect(parseCommandTopic(formatCommandTopic(A, 'c9'))).toEqual({ deviceId: A, commandId: 'c9' });
  });

  it('fail: formatting refuses malformed ids with GATEWAY_TOPIC_INVALID', () => {
    expect(() => formatDeviceTopic('x', 'state')).toThrow(expect.objectContaining({ code: 'GATEWAY_TOPIC_INVALID' }));
    expect(() => formatCommandTopic(A, 'a/b')).toThrow(expect.objectContaining({ code: 'GATEWAY_TOPIC_INVALID' }));
    expect(() => formatDeviceTopic(A, 'command_result')).toThrow(expect.objectContaining({ code: 'GATEWAY_TOPIC_INVALID' }));
  });

  it('only the two own command filters are own filters', () => {
    const [plus, hash] = commandSubscriptionFilters(A);
    expect(isOwnCommandFilter(A, plus)).toBe(true);
    expect(isOwnCommandFilter(A, hash)).toBe(true);
    for (const f of [`devices/${B}/commands/+`, `devices/${A}/commands/x`, `devices/${A}/#`, `devices/${A}/commands`, `devices/${A}/commands/+/result`, '#']) {
      expect(isOwnCommandFilter(A, f)).toBe(false);
    }
  });

  it('property: any string that parses round-trips through format', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 140 }), (s) => {
        const parsed = parseDeviceTopic(s);
        if (parsed === undefined) return;
        const back = parsed.kind === 'command_result' ? formatDeviceTopic(parsed.deviceId, parsed.kind, parsed.commandId) : formatDeviceTopic(parsed.deviceId, parsed.kind);
        expect(back).toBe(s);
      }),
      { numRuns: 2000 },
    );
  });
});
