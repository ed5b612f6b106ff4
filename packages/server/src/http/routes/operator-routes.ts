import {
  ApiToken,
  AuditList,
  AuditListQuery,
  AuditVerifyResult,
  CreatedToken,
  CreatedWebhook,
  CreateTokenBody,
  CreateWebhookBody,
  DeliveryList,
  TokenList,
  Uuid,
  WebhookList,
  NoBody,
  NoQuery,
} from '@fleetkey/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { requestContext } from '../request-context.js';
import { stripUndefined } from './device-routes.js';
import type { OperatorServices } from './services.js';

const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });

export const operatorRoutes: FastifyPluginAsyncTypebox<{ services: OperatorServices }> = async (app, { services }) => {
  app.post(
    '/tokens',
    { config: { permission: 'token:admin' }, schema: { tags: ['tokens'], querystring: NoQuery, body: CreateTokenBody, response: { 201: CreatedToken } } },
    async (req, reply) => reply.status(201).send(await services.tokens.create(requestContext(req), req.body.role, req.body.name)),
  );
  app.get(
    '/tokens',
    { config: { permission: 'token:admin' }, schema: { tags: ['tokens'], querystring: NoQuery, response: { 200: TokenList } } },
    async () => ({ tokens: await services.tokens.list() }),
  );
  app.post(
    '/tokens/:id/revoke',
    { config: { permission: 'token:admin' }, schema: { tags: ['tokens'], params: IdParams, querystring: NoQuery, body: NoBody, response: { 200: ApiToken } } },
    async (req) => services.tokens.revoke(requestContext(req), req.params.id),
  );

  app.post(
    '/webhooks',
    { config: { permission: 'webhook:admin' }, schema: { tags: ['webhooks'], querystring: NoQuery, body: CreateWebhookBody, response: { 201: CreatedWebhook } } },
    async (req, reply) => reply.status(201).send(await services.webhooks.add(requestContext(req), req.body)),
  );
  app.get(
    '/webhooks',
    { config: { permission: 'webhook:admin' }, schema: { tags: ['webhooks'], querystring: NoQuery, response: { 200: WebhookList } } },
    async () => ({ webhooks: await services.webhooks.list() }),
  );
  app.delete(
    '/webhooks/:id',
    { config: { permission: 'webhook:admin' }, schema: { tags: ['webhooks'], params: IdParams, querystring: NoQuery, body: NoBody, response: { 204: Type.Null() } } },
    async (req, reply) => {
      await services.webhooks.remove(requestContext(req), req.params.id);
      return reply.status(204).send(null);
    },
  );
  app.get(
    '/webhooks/:id/deliveries',
    {
      config: { permission: 'webhook:admin' },
      schema: {
        tags: ['webhooks'],
        params: IdParams,
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) }, { additionalProperties: false }),
        response: { 200: DeliveryList },
      },
    },
    async (req) => ({ deliveries: await services.webhooks.deliveries(req.params.id, req.query.limit ?? 100) }),
  );

  app.get(
    '/audit',
    { config: { permission: 'audit:read' }, schema: { tags: ['audit'], querystring: AuditListQuery, response: { 200: AuditList } } },
    async (req) => ({ entries: await services.audit.list(stripUndefined(req.query)) }),
  );
  app.post(
    '/audit/verify',
    { config: { permission: 'audit:verify' }, schema: { tags: ['audit'], querystring: NoQuery, body: NoBody, response: { 200: AuditVerifyResult } } },
    async () => services.audit.verify(),
  );
};
