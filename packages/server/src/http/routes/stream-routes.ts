import { FleetkeyError, NameString, NoQuery, Uuid } from '@fleetkey/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { StreamHub } from '../../modules/telemetry/stream-hub.js';
import { storedPayload } from '../../modules/telemetry/stored-payload.js';

const KINDS = ['diagnostics', 'telemetry', 'state', 'command_result'] as const;
/** A subscriber that falls this far behind is cut rather than buffered without bound. */
const MAX_BUFFERED_BYTES = 1 << 20;
const HEARTBEAT_MS = 15_000;

/** GET /v1/stream?name=|deviceId=[&kinds=a,b] — server-sent events of accepted messages. */
export const streamRoutes: FastifyPluginAsyncTypebox<{ hub: StreamHub }> = async (app, { hub }) => {
  app.get(
    '/stream',
    {
      config: { permission: 'data:read' },
      schema: {
        tags: ['data'],
        querystring: Type.Object(
          { name: Type.Optional(NameString), deviceId: Type.Optional(Uuid), kinds: Type.Optional(Type.String({ pattern: '^[a-z_]+(,[a-z_]+)*$', maxLength: 64 })) },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      const { name, deviceId } = req.query;
      if ((name === undefined) === (deviceId === undefined)) throw new FleetkeyError('VALIDATION_FAILED', { detail: 'give exactly one of name or deviceId' });
      const kinds = new Set(req.query.kinds === undefined ? KINDS : req.query.kinds.split(','));
      for (const k of kinds) if (!(KINDS as readonly string[]).includes(k)) throw new FleetkeyError('VALIDATION_FAILED', { detail: `unknown kind ${k}` });
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-request-id': req.id });
      res.write(': fleetkey stream\n\n');
      const unsubscribe = hub.subscribe({ ...(name === undefined ? {} : { name }), ...(deviceId === undefined ? {} : { deviceId }), kinds }, (m) => {
        if (res.writableLength > MAX_BUFFERED_BYTES) {
          res.destroy();
          return;
        }
        const payload = storedPayload(m.payload);
        const data = JSON.stringify({ deviceId: m.deviceId, name: m.name, kind: m.kind, receivedAt: new Date(m.receivedAt).toISOString(), payload, ...(m.commandId === undefined ? {} : { commandId: m.commandId }) });
        res.write(`event: ${m.kind}\ndata: ${data}\n\n`);
      });
      const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
      res.on('close', () => {
        clearInterval(heartbeat);
        unsubscribe();
      });
    },
  );

  /**
   * GET /v1/stream/rate — server-sent events, one a second: messages stored fleet-wide in that
   * second (the console's live message-rate plot). Counts only: no payload, no device id.
   */
  app.get('/stream/rate', { config: { permission: 'data:read' }, schema: { tags: ['data'], querystring: NoQuery } }, async (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-request-id': req.id });
    res.write(': fleetkey message rate\n\n');
    let last = hub.published;
    const tick = setInterval(() => {
      const now = hub.published;
      if (res.writableLength > MAX_BUFFERED_BYTES) return void res.destroy();
      res.write(`event: rate\ndata: ${JSON.stringify({ at: new Date().toISOString(), messages: now - last })}\n\n`);
      last = now;
    }, 1000);
    res.on('close', () => clearInterval(tick));
  });
};
