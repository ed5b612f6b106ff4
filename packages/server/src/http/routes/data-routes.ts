import { DURATION_PATTERN, FleetkeyError, NameString, NoQuery, parseDuration, Uuid } from '@fleetkey/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { CommandService } from '../../modules/commands/command-service.js';
import { commandView } from '../../modules/commands/command-service.js';
import type { DataService } from '../../modules/telemetry/data-service.js';
import { requestContext } from '../request-context.js';

const Point = Type.Object(
  { deviceId: Type.String(), name: Type.Union([Type.String(), Type.Null()]), receivedAt: Type.String(), payload: Type.Unknown() },
  { additionalProperties: false },
);
const Since = Type.Optional(Type.String({ format: 'date-time' }));
const Limit = Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 }));
const CommandSchema = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    type: Type.String(),
    payload: Type.Unknown(),
    status: Type.String(),
    createdAt: Type.String(),
    expiresAt: Type.String(),
    deliveredTo: Type.Union([Type.String(), Type.Null()]),
    deliveredAt: Type.Union([Type.String(), Type.Null()]),
    ackedAt: Type.Union([Type.String(), Type.Null()]),
    result: Type.Unknown(),
    completedAt: Type.Union([Type.String(), Type.Null()]),
  },
  { additionalProperties: false },
);

export const dataRoutes: FastifyPluginAsyncTypebox<{ data: DataService; commands: CommandService }> = async (app, { data, commands }) => {
  app.get(
    '/data/diagnostics',
    {
      config: { permission: 'data:read' },
      schema: {
        tags: ['data'],
        querystring: Type.Object({ name: Type.Optional(NameString), deviceId: Type.Optional(Uuid), since: Since, limit: Limit }, { additionalProperties: false }),
        response: { 200: Type.Object({ points: Type.Array(Point) }, { additionalProperties: false }) },
      },
    },
    async (req) => {
      const since = req.query.since === undefined ? 0 : Date.parse(req.query.since);
      const limit = req.query.limit ?? 1000;
      if ((req.query.name === undefined) === (req.query.deviceId === undefined)) {
        throw new FleetkeyError('VALIDATION_FAILED', { detail: 'give exactly one of name or deviceId' });
      }
      const points = req.query.name !== undefined ? await data.diagnosticsByName(req.query.name, since, limit) : await data.diagnosticsByDevice(req.query.deviceId!, since, limit);
      return { points };
    },
  );
  app.get(
    '/data/telemetry',
    {
      config: { permission: 'data:read' },
      schema: {
        tags: ['data'],
        querystring: Type.Object({ deviceId: Uuid, since: Since, limit: Limit }, { additionalProperties: false }),
        response: { 200: Type.Object({ points: Type.Array(Point) }, { additionalProperties: false }) },
      },
    },
    async (req) => ({ points: await data.telemetryByDevice(req.query.deviceId, req.query.since === undefined ? 0 : Date.parse(req.query.since), req.query.limit ?? 1000) }),
  );
  app.post(
    '/commands',
    {
      config: { permission: 'command:send' },
      schema: {
        tags: ['commands'],
        querystring: NoQuery,
        body: Type.Object(
          { name: NameString, type: Type.String({ pattern: '^[a-z][a-z0-9._-]{0,63}$' }), payload: Type.Optional(Type.Unknown()), ttl: Type.Optional(Type.String({ pattern: DURATION_PATTERN })) },
          { additionalProperties: false },
        ),
        response: { 201: CommandSchema },
      },
    },
    async (req, reply) => {
      const ttl = parseDuration(req.body.ttl ?? '1h') ?? 3_600_000;
      const row = await commands.send(requestContext(req), req.body.name, req.body.type, req.body.payload, ttl);
      return reply.status(201).send(commandView(row, Date.now()));
    },
  );
  app.get(
    '/commands/:id',
    { config: { permission: 'data:read' }, schema: { tags: ['commands'], params: Type.Object({ id: Uuid }, { additionalProperties: false }), querystring: NoQuery, response: { 200: CommandSchema } } },
    async (req) => commands.show(req.params.id),
  );
};
