import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { rawHttp } from '../support/http-raw.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

describe('the server log never holds a token, a query value or a secret', () => {
  let t: TestServer;
  const lines: string[] = [];
  beforeAll(async () => {
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    t = await startTestServer('sqlite', { logger: pino({ level: 'trace' }, stream), config: { webhooks: { allowPrivateDestinations: ['127.0.0.1/32'] } } });
  });
  afterAll(async () => t?.stop());

  test('fail: tokens in the query, the path, a bad URL and a refused request line stay out of the log', async () => {
    const viewer = (await t.call('POST', '/v1/tokens', { body: { role: 'viewer' } })).body.secret as string;
    const hook = (await t.call('POST', '/v1/webhooks', { body: { url: 'http://127.0.0.1:9/hook', events: ['name.bound'] } })).body.secret as string;
    expect(hook).toMatch(/^whsec_/);
    await t.call('GET', `/v1/devices?token=${viewer}`);
    await t.call('GET', `/v1/devices?access_token=${viewer}`, { token: null });
    await t.call('GET', `/v1/audit?subject=${encodeURIComponent(viewer)}`);
    await t.call('GET', `/v1/names/${viewer.toLowerCase()}`);
    await t.call('GET', `/v1/names/%E0%A4%A${viewer}`);
    await rawHttp(t.url, `GET /v1/devices?sig=${viewer} HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\nAuthorization: Bearer ${viewer}\r\n\r\n`);
    await t.call('GET', '/v1/devices', { token: viewer });
    const log = lines.join('');
    // The capture works: request lines are there, with the query's names and not its values.
    expect(log).toContain('/v1/devices?token=[redacted]');
    expect(log).toContain('/v1/audit?subject=[redacted]');
    expect(log).toContain('request refused by the HTTP parser');
    for (const secret of [viewer, viewer.toLowerCase(), viewer.slice(4), t.adminToken, t.adminToken.slice(4), hook]) expect(log).not.toContain(secret);
  });
});
