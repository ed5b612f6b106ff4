import {
  AtQuery,
  BindBody,
  CreateNameBody,
  DeviceAt,
  Name,
  NameHistory,
  NameList,
  NameString,
  RenameBody,
  ReplaceBody,
  ReplaceResult,
  UnbindBody,
  NoQuery,
  OptionalBody,
  TagFilter,
} from '@fleetkey/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { requestContext } from '../request-context.js';
import { stripUndefined } from './device-routes.js';
import type { OperatorServices } from './services.js';

const NameParams = Type.Object({ name: NameString }, { additionalProperties: false });

export const nameRoutes: FastifyPluginAsyncTypebox<{ services: OperatorServices }> = async (app, { services }) => {
  app.post(
    '/names',
    { config: { permission: 'name:write' }, schema: { tags: ['names'], querystring: NoQuery, body: CreateNameBody, response: { 201: Name } } },
    async (req, reply) => reply.status(201).send(await services.names.create(requestContext(req), req.body)),
  );

  app.get(
    '/names',
    {
      config: { permission: 'name:read' },
      schema: {
        tags: ['names'],
        querystring: Type.Object(
          {
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
            after: Type.Optional(NameString),
            /** `key=value`: names carrying this tag (key and value as tags allow). */
            tag: Type.Optional(TagFilter),
          },
          { additionalProperties: false },
        ),
        response: { 200: NameList },
      },
    },
    async (req) => ({ names: await services.names.list(stripUndefined(req.query)) }),
  );

  app.get(
    '/names/:name',
    { config: { permission: 'name:read' }, schema: { tags: ['names'], params: NameParams, querystring: NoQuery, response: { 200: Name } } },
    async (req) => services.names.show(req.params.name),
  );

  app.post(
    '/names/:name/bind',
    { config: { permission: 'name:write' }, schema: { tags: ['names'], params: NameParams, querystring: NoQuery, body: BindBody, response: { 200: Name } } },
    async (req) => services.bindings.bind(requestContext(req), req.params.name, req.body.deviceId, req.body.reason),
  );

  app.post(
    '/names/:name/unbind',
    {
      config: { permission: 'name:write' },
      schema: { tags: ['names'], params: NameParams, querystring: NoQuery, body: OptionalBody(UnbindBody), response: { 200: Name } },
    },
    async (req) => services.bindings.unbind(requestContext(req), req.params.name, req.body?.reason),
  );

  app.post(
    '/names/:name/replace',
    { config: { permission: 'name:write' }, schema: { tags: ['names'], params: NameParams, querystring: NoQuery, body: ReplaceBody, response: { 200: ReplaceResult } } },
    async (req) => services.bindings.replace(requestContext(req), req.params.name, req.body),
  );

  app.post(
    '/names/:name/rename',
    { config: { permission: 'name:write' }, schema: { tags: ['names'], params: NameParams, querystring: NoQuery, body: RenameBody, response: { 200: Name } } },
    async (req) => services.names.rename(requestContext(req), req.params.name, req.body.newName),
  );

  app.get(
    '/names/:name/history',
    { config: { permission: 'name:read' }, schema: { tags: ['names'], params: NameParams, querystring: NoQuery, response: { 200: NameHistory } } },
    async (req) => services.bindings.history(req.params.name),
  );

  app.get(
    '/names/:name/device-at',
    { config: { permission: 'name:read' }, schema: { tags: ['names'], params: NameParams, querystring: AtQuery, response: { 200: DeviceAt } } },
    async (req) => {
      const at = req.query.at === undefined ? Date.now() : Date.parse(req.query.at);
      const deviceId = await services.bindings.deviceAtName(req.params.name, at);
      return { name: req.params.name, at: new Date(at).toISOString(), deviceId };
    },
  );
};
