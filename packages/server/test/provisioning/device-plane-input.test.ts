/**
 * The device plane (the mTLS listener devices provision and renew on) takes input under the same
 * rules as the operator API (README, "Bad input"): closed schemas for body and query, strict JSON,
 * JSON only, and catalogue bodies for what the router and node's HTTP parser refuse. Its
 * provisioning routes are reachable without any credential, so it is the more exposed of the two.
 */
import { Writable } from 'node:stream';
import { ERRORS } from '@fleetkey/protocol';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { rawHttp } from '../support/http-raw.js';
import { mtlsPost } from '../support/mtls.js';
import { deviceKey } from '../support/pki.js';
import { bundleOf, manufactured } from '../support/provision.js';
import { tableDigest } from '../support/table-digest.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

function expectRefusal(r: { status: number; body: any }, code: keyof typeof ERRORS): void {
  expect(r.body?.code, `${r.status} ${JSON.stringify(r.body)}`).toBe(code);
  expect(r.status).toBe(ERRORS[code].status);
  expect(Object.keys(r.body).filter((k) => k !== 'details').sort()).toEqual(['code', 'message', 'requestId']);
  expect(r.body.message).toBe(ERRORS[code].message);
}

describe.each(DIALECTS)('hostile input to the device plane is refused with catalogue errors and changes nothing, on %s', (dialect) => {
  let t: TestServer;
  let device: Awaited<ReturnType<typeof manufactured>>;
  let before: Record<string, string>;
  const log: string[] = [];
  beforeAll(async () => {
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (log.push(chunk.toString()), done()) });
    t = await startTestServer(dialect, { logger: pino({ level: 'info' }, sink) });
    device = await manufactured(t);
    before = await tableDigest(t.server);
  });
  afterAll(async () => t?.stop());

  const csr = deviceKey().csrPem;
  // [label, path, body (text sent as is), content type, send the IDevID as client certificate, code]
  const refusals: [string, string, string, string, boolean, keyof typeof ERRORS][] = [
    ['unknown query parameter on the nonce route', '/device/v1/provision/nonce?x=1', '{}', 'application/json', false, 'VALIDATION_FAILED'],
    ['unknown body field on the nonce route', '/device/v1/provision/nonce', '{"unknown":1}', 'application/json', false, 'VALIDATION_FAILED'],
    ['duplicate JSON key on the nonce route', '/device/v1/provision/nonce', '{"a":1,"a":2}', 'application/json', false, 'MALFORMED_JSON'],
    ['a body that is not JSON on the nonce route', '/device/v1/provision/nonce', 'nonce please', 'text/plain', false, 'UNSUPPORTED_MEDIA_TYPE'],
    ['repeated query parameter', '/device/v1/provision/nonce?a=1&a=2', '{}', 'application/json', false, 'VALIDATION_FAILED'],
    ['unknown query parameter on x509, with a client certificate', '/device/v1/provision/x509?debug=1', JSON.stringify({ csr }), 'application/json', true, 'VALIDATION_FAILED'],
    ['__proto__ in an x509 body, with a client certificate', '/device/v1/provision/x509', `{"csr":${JSON.stringify(csr)},"__proto__":{"admin":true}}`, 'application/json', true, 'MALFORMED_JSON'],
    ['duplicate deviceId in a symmetric body', '/device/v1/provision/symmetric', `{"deviceId":"8c7d4b1e-2f3a-4c5d-9e6f-7a8b9c0d1e2f","deviceId":"9c7d4b1e-2f3a-4c5d-9e6f-7a8b9c0d1e2f","token":"0123456789ab","csr":${JSON.stringify(csr)}}`, 'application/json', false, 'MALFORMED_JSON'],
    ['NUL in a TPM challenge id', '/device/v1/provision/tpm/finish', `{"challengeId":"a\\u0000b","secret":"AAAA","csr":${JSON.stringify(csr)}}`, 'application/json', false, 'VALIDATION_FAILED'],
    ['unknown query parameter on renew, with a client certificate', '/device/v1/renew?x=1', JSON.stringify({ csr }), 'application/json', true, 'VALIDATION_FAILED'],
    ['constructor.prototype in a session-token body', '/device/v1/session-token', '{"constructor":{"prototype":{"x":1}}}', 'application/json', false, 'MALFORMED_JSON'],
    ['a session-token body that is not JSON, with a client certificate', '/device/v1/session-token', 'deviceId=1', 'application/x-www-form-urlencoded', true, 'UNSUPPORTED_MEDIA_TYPE'],
  ];

  test.each(refusals)('fail: %s gets its catalogue 4xx and changes no row', async (_label, path, raw, contentType, withCert, code) => {
    const r = await mtlsPost(`${t.server.deviceUrl}${path}`, null, {
      ca: bundleOf(t),
      raw,
      contentType,
      ...(withCert ? { cert: device.idevidChainPem, key: device.idevid.keyPem } : {}),
    });
    expectRefusal(r, code);
    expect(await tableDigest(t.server)).toEqual(before);
  });

  test('fail: an oversized header gets the catalogue 431 from the device listener', async () => {
    const r = await rawHttp(t.server.deviceUrl, `POST /device/v1/provision/nonce HTTP/1.1\r\nhost: x\r\nx-pad: ${'a'.repeat(20_000)}\r\n\r\n`, { ca: bundleOf(t) });
    expectRefusal({ status: r.status, body: JSON.parse(r.body) }, 'HEADERS_TOO_LARGE');
  });

  test('fail: a malformed URL gets the catalogue 400 and is not echoed', async () => {
    const r = await rawHttp(t.server.deviceUrl, `POST /device/v1/provision/%E0%A4%A?marker=fk_echo HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`, { ca: bundleOf(t) });
    expectRefusal({ status: r.status, body: JSON.parse(r.body) }, 'BAD_REQUEST');
    expect(r.body).not.toContain('%E0');
    expect(r.body).not.toContain('fk_echo');
  });

  test('fail: a query value (a token sent in the wrong place) never reaches the device plane log', async () => {
    await mtlsPost(`${t.server.deviceUrl}/device/v1/provision/nonce?token=SECRETQUERYVALUE`, {}, { ca: bundleOf(t) });
    const lines = log.join('');
    expect(lines).toContain('/device/v1/provision/nonce?token=[redacted]');
    expect(lines).not.toContain('SECRETQUERYVALUE');
  });

  test("the nonce route still answers the SDK's empty object", async () => {
    expect((await mtlsPost(`${t.server.deviceUrl}/device/v1/provision/nonce`, {}, { ca: bundleOf(t) })).status).toBe(200);
  });

  test('fail: a device-plane route registered without schemas fails the boot', async () => {
    const { deviceFastify } = await import('../../src/http/device-app.js');
    const app = deviceFastify({ ca: t.server.ca, audit: t.server.services.audit, logger: pino({ level: 'silent' }), bodyLimitBytes: 1024, requestTimeoutMs: 5_000 });
    try {
      const boot = async () => {
        app.post('/device/v1/unchecked', async () => ({}));
        await app.ready();
      };
      await expect(boot()).rejects.toThrow(/declares no/);
    } finally {
      await app.close().catch(() => undefined);
    }
  });
});
