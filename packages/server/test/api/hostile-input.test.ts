import { ERRORS } from '@fleetkey/protocol';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { rawHttp } from '../support/http-raw.js';
import { tableDigest } from '../support/table-digest.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

/** A refusal: a 4xx from the catalogue, in the one body shape, with nothing of the input echoed. */
function expectRefusal(r: { status: number; body: any }, code: string): void {
  expect(r.body?.code, JSON.stringify(r.body)).toBe(code);
  expect(r.status).toBe(ERRORS[code as keyof typeof ERRORS].status);
  expect(Object.keys(r.body).filter((k) => k !== 'details').sort()).toEqual(['code', 'message', 'requestId']);
  expect(r.body.message).toBe(ERRORS[code as keyof typeof ERRORS].message);
}

describe.each(DIALECTS)('hostile input to the operator API is refused with catalogue errors and changes nothing, on %s', (dialect) => {
  let t: TestServer;
  let deviceId: string;
  let before: Record<string, string>;
  beforeAll(async () => {
    t = await startTestServer(dialect);
    deviceId = (await t.call('POST', '/v1/devices', { body: { model: 'welder' } })).body.id;
    expect((await t.call('POST', '/v1/names', { body: { name: 'cell-1' } })).status).toBe(201);
    before = await tableDigest(t.server);
  });
  afterAll(async () => t?.stop());

  const refusals: [string, string, string, { body?: unknown; raw?: string }, string][] = [
    // Defect 5: values that reached the handler and threw.
    ['infinite limit', 'GET', '/v1/devices?limit=Infinity', {}, 'VALIDATION_FAILED'],
    ['overflowing limit', 'GET', '/v1/names?limit=1e309', {}, 'VALIDATION_FAILED'],
    ['overflowing limit on certificates', 'GET', '/v1/certificates?limit=1e309', {}, 'VALIDATION_FAILED'],
    ['infinite limit on data', 'GET', '/v1/data/diagnostics?name=cell-1&limit=Infinity', {}, 'VALIDATION_FAILED'],
    ['infinite audit cursor', 'GET', '/v1/audit?after=Infinity', {}, 'VALIDATION_FAILED'],
    ['overflowing audit cursor', 'GET', '/v1/audit?after=1e309', {}, 'VALIDATION_FAILED'],
    ['audit cursor past the largest integer', 'GET', '/v1/audit?after=99999999999999999999', {}, 'VALIDATION_FAILED'],
    ['audit cursor past 2^53', 'GET', '/v1/audit?after=9007199254740993', {}, 'VALIDATION_FAILED'],
    ['leap second in at', 'GET', '/v1/names/cell-1/device-at?at=2016-12-31T23:59:60Z', {}, 'VALIDATION_FAILED'],
    ['leap second in name-at', 'GET', `/v1/devices/{dev}/name-at?at=2016-12-31T23:59:60Z`, {}, 'VALIDATION_FAILED'],
    ['leap second in since', 'GET', `/v1/data/telemetry?deviceId={dev}&since=2016-12-31T23:59:60Z`, {}, 'VALIDATION_FAILED'],
    ['a day that does not exist', 'GET', '/v1/names/cell-1/device-at?at=2026-02-30T00:00:00Z', {}, 'VALIDATION_FAILED'],
    ['a time without its zone', 'GET', '/v1/names/cell-1/device-at?at=2026-02-01T00:00:00', {}, 'VALIDATION_FAILED'],
    ['NUL in a reason', 'POST', '/v1/names/cell-1/bind', { body: { deviceId: '{dev}', reason: 'servo\u0000failure' } }, 'VALIDATION_FAILED'],
    ['NUL in a label', 'POST', '/v1/enrollments', { body: { label: 'line\u00003', kind: 'group', attestation: 'symmetric' } }, 'VALIDATION_FAILED'],
    ['NUL in a token name', 'POST', '/v1/tokens', { raw: '{"role":"viewer","name":"a\\u0000b"}' }, 'VALIDATION_FAILED'],
    ['NUL in a query filter', 'GET', '/v1/audit?subject=name%00x', {}, 'VALIDATION_FAILED'],
    ['NUL in an action filter', 'GET', '/v1/audit?action=%00', {}, 'VALIDATION_FAILED'],
    ['an encoded surrogate in a query filter', 'GET', '/v1/audit?subject=%ED%A0%80', {}, 'BAD_REQUEST'],
    ['an invalid UTF-8 byte in a query filter', 'GET', '/v1/audit?action=%FF', {}, 'BAD_REQUEST'],
    ['a lone surrogate in a body', 'POST', '/v1/names/cell-1/unbind', { raw: '{"reason":"servo \\ud800"}' }, 'VALIDATION_FAILED'],
    ['NUL in a tag key of a body', 'POST', '/v1/names', { raw: '{"name":"n-nul","tags":{"a\\u0000":"x"}}' }, 'VALIDATION_FAILED'],
    // Defect 6: routes that ran with any body or query.
    ['junk body to remove the root key', 'POST', '/v1/ca/root/remove', { body: { confirm: 'yes', admin: true } }, 'VALIDATION_FAILED'],
    ['junk body to rotate the CA', 'POST', '/v1/ca/rotate', { body: { junk: 1 } }, 'VALIDATION_FAILED'],
    ['junk body to verify the audit log', 'POST', '/v1/audit/verify', { body: { junk: 1 } }, 'VALIDATION_FAILED'],
    ['junk body to enable an enrollment', 'POST', '/v1/enrollments/8c7d4b1e-2f3a-4c5d-9e6f-7a8b9c0d1e2f/enable', { body: { x: 1 } }, 'VALIDATION_FAILED'],
    ['junk body to revoke a token', 'POST', '/v1/tokens/8c7d4b1e-2f3a-4c5d-9e6f-7a8b9c0d1e2f/revoke', { body: { x: 1 } }, 'VALIDATION_FAILED'],
    ['unknown query on the token list', 'GET', '/v1/tokens?admin=1', {}, 'VALIDATION_FAILED'],
    ['unknown query on the CA', 'GET', '/v1/ca?x=1', {}, 'VALIDATION_FAILED'],
    ['unknown query on enrollments', 'GET', '/v1/enrollments?x=1', {}, 'VALIDATION_FAILED'],
    ['unknown query on a name', 'GET', '/v1/names/cell-1?x=1', {}, 'VALIDATION_FAILED'],
    ['unknown query on a POST', 'POST', '/v1/ca/rotate?force=1', {}, 'VALIDATION_FAILED'],
    ['repeated query parameter', 'GET', '/v1/devices?limit=1&limit=2', {}, 'VALIDATION_FAILED'],
    ['duplicate key, the last one an escalation', 'POST', '/v1/tokens', { raw: '{"role":"viewer","role":"admin"}' }, 'MALFORMED_JSON'],
    ['duplicate key spelled with an escape', 'POST', '/v1/tokens', { raw: '{"role":"viewer","r\\u006fle":"admin"}' }, 'MALFORMED_JSON'],
    ['duplicate key in a nested object', 'POST', '/v1/names', { raw: '{"name":"n-dup","tags":{"site":"a","site":"b"}}' }, 'MALFORMED_JSON'],
    ['constructor.prototype poisoning', 'POST', '/v1/names', { raw: '{"name":"n-ctor","constructor":{"prototype":{"admin":true}}}' }, 'MALFORMED_JSON'],
    ['proto poisoning nested', 'POST', '/v1/names', { raw: '{"name":"n-proto","tags":{"__proto__":{"x":"y"}}}' }, 'MALFORMED_JSON'],
    // Defect 7: a name longer than any route could address.
    ['name of 129 characters in a route', 'GET', `/v1/names/${'a'.repeat(129)}`, {}, 'VALIDATION_FAILED'],
  ];

  test.each(refusals)('fail: %s gets its catalogue 4xx and changes no row', async (_label, method, path, opts, code) => {
    const dev = (s: string) => s.replaceAll('{dev}', deviceId);
    const body = opts.body === undefined ? {} : { body: JSON.parse(dev(JSON.stringify(opts.body))) as unknown };
    const r = await t.call(method, dev(path), { ...opts, ...body });
    expect(r.status).toBeLessThan(500);
    expectRefusal(r, code);
    expect(await tableDigest(t.server)).toEqual(before);
  });

  test('names of 101 to 128 characters can be created and addressed by every name route', async () => {
    for (const n of [101, 128]) {
      const name = `n${'x'.repeat(n - 1)}`;
      expect((await t.call('POST', '/v1/names', { body: { name } })).status).toBe(201);
      expect((await t.call('GET', `/v1/names/${name}`)).body.name).toBe(name);
      expect((await t.call('GET', `/v1/names/${name}/history`)).status).toBe(200);
      expect((await t.call('GET', `/v1/names/${name}/device-at`)).status).toBe(200);
      expect((await t.call('GET', `/v1/data/diagnostics?name=${name}`)).status).toBe(200);
      const renamed = `r${'y'.repeat(n - 1)}`;
      expect((await t.call('POST', `/v1/names/${name}/rename`, { body: { newName: renamed } })).status).toBe(200);
      expect((await t.call('GET', `/v1/names/${name}`)).body.code).toBe('NAME_MOVED');
    }
  });

  test('fail: a path parameter far past any limit gets a catalogue 414, not the framework body', async () => {
    const r = await t.call('GET', `/v1/names/${'a'.repeat(600)}`);
    expectRefusal(r, 'URI_TOO_LONG');
  });

  test('fail: a URL that does not decode gets a catalogue 400 that does not echo it', async () => {
    const r = await t.call('GET', '/v1/names/%E0%A4%A-secret-marker');
    expectRefusal(r, 'BAD_REQUEST');
    expect(JSON.stringify(r.body)).not.toContain('secret-marker');
  });

  test('fail: oversized headers get a catalogue 431 from the HTTP parser', async () => {
    const r = await rawHttp(t.url, `GET /v1/devices HTTP/1.1\r\nHost: x\r\nX-Junk: ${'a'.repeat(20_000)}\r\nConnection: close\r\n\r\n`);
    expect(r.status).toBe(431);
    const body = JSON.parse(r.body);
    expectRefusal({ status: r.status, body }, 'HEADERS_TOO_LARGE');
  });

  test('fail: a request line the HTTP parser refuses gets a catalogue 400', async () => {
    const r = await rawHttp(t.url, 'GET /v1/devices HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\nAuthorization: Bearer fkt_leak\r\n\r\n');
    expectRefusal({ status: r.status, body: JSON.parse(r.body) }, 'BAD_REQUEST');
    expect(r.body).not.toContain('fkt_leak');
  });
});

describe('a request that stalls gets a catalogue 408', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer('sqlite', { config: { http: { requestTimeoutMs: 400 } } });
  });
  afterAll(async () => t?.stop());

  test('fail: headers never finished within the request timeout', async () => {
    const r = await rawHttp(t.url, 'GET /v1/devices HTTP/1.1\r\nHost: x\r\n', { idleMs: 10_000 });
    expectRefusal({ status: r.status, body: JSON.parse(r.body) }, 'REQUEST_TIMEOUT');
  });
});
