import { randomUUID } from 'node:crypto';
import { connect as tlsConnect } from 'node:tls';
import { connectAsync } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway, type GatewayHooks } from '../../src/modules/gateway/index.js';
import { makePki, type Pki } from './support/pki.js';

const A = randomUUID();
let pki: Pki;
const hooks: GatewayHooks = {
  authenticate: async (ctx) => (ctx.username === 'dev' && ctx.password?.toString() === 'pw' ? { ok: true, deviceId: A } : { ok: false, reason: 'bad_credentials', detail: 'test' }),
  accept: async () => undefined,
};

beforeAll(async () => {
  pki = await makePki([A]);
});
afterAll(async () => {
  await pki?.dispose();
});

describe('gateway options', () => {
  it('fail: no tls and no explicit insecure → GATEWAY_TLS_REQUIRED', async () => {
    await expect(createGateway({ listen: { host: '127.0.0.1', port: 0 }, hooks })).rejects.toMatchObject({ code: 'GATEWAY_TLS_REQUIRED' });
  });

  it.each([
    ['a zero packet size', { maxPacketBytes: 0 }],
    ['a fractional rate', { maxPublishesPerSecond: 1.5 }],
    ['a receive maximum above 65535', { receiveMaximum: 70_000 }],
  ])('fail: %s → CONFIG_INVALID', async (_what, limits) => {
    await expect(createGateway({ listen: { host: '127.0.0.1', port: 0 }, insecure: true, limits, hooks })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('fail: no authenticate hook → CONFIG_INVALID (no accept-everyone default)', async () => {
    await expect(
      createGateway({ listen: { host: '127.0.0.1', port: 0 }, insecure: true, hooks: { accept: hooks.accept } as unknown as GatewayHooks }),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('insecure: true serves plain TCP with username/password authentication', async () => {
    const gw = await createGateway({ listen: { host: '127.0.0.1', port: 0 }, insecure: true, hooks });
    try {
      const url = `mqtt://127.0.0.1:${gw.address().port}`;
      const bad = await connectAsync(url, { clientId: A, username: 'dev', password: 'nope', reconnectPeriod: 0 }, false).catch((e: { code?: number }) => e);
      expect((bad as { code?: number }).code).toBe(4);
      const c = await connectAsync(url, { clientId: A, username: 'dev', password: 'pw', reconnectPeriod: 0 }, false);
      expect(gw.isConnected(A)).toBe(true);
      await c.endAsync();
    } finally {
      await gw.close();
    }
  });

  it('fail: TLS below 1.2 is refused at the handshake', async () => {
    const gw = await createGateway({
      listen: { host: '127.0.0.1', port: 0 },
      tls: { key: pki.server.key, cert: pki.server.cert, ca: [pki.ca], requestCert: true },
      hooks,
    });
    try {
      const ident = pki.devices.get(A)!;
      const err = await new Promise<unknown>((resolve) => {
        const s = tlsConnect({ host: '127.0.0.1', port: gw.address().port, ca: pki.ca, cert: ident.cert, key: ident.key, servername: 'localhost', minVersion: 'TLSv1', maxVersion: 'TLSv1.1' });
        s.once('secureConnect', () => {
          s.destroy();
          resolve(undefined);
        });
        s.once('error', resolve);
      });
      expect(err).toBeInstanceOf(Error);
    } finally {
      await gw.close();
    }
  });
});
