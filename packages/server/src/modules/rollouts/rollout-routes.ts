import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { CreateRolloutBody, NoQuery, RolloutActionBody, RolloutIdParams, RolloutTargetView, RolloutView, TARGET_STATUSES } from '@fleetkey/protocol';
import { requestContext } from '../../http/request-context.js';
import type { RolloutService } from './rollout-service.js';

/** Operator routes under /v1/rollouts: reads need rollout:read (every role that reads), changes rollout:write (operator, admin). */
export const rolloutRoutes: FastifyPluginAsyncTypebox<{ rollouts: RolloutService }> = async (app, { rollouts }) => {
  const reasonOf = (b: unknown): string | undefined => (b as { reason?: string } | null)?.reason;
  app.post(
    '/rollouts',
    { config: { permission: 'rollout:write' }, schema: { tags: ['rollouts'], querystring: NoQuery, body: CreateRolloutBody, response: { 201: RolloutView } } },
    async (req, reply) => reply.code(201).send(await rollouts.create(requestContext(req), req.body)),
  );
  app.get(
    '/rollouts',
    {
      config: { permission: 'rollout:read' },
      schema: {
        tags: ['rollouts'],
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) }, { additionalProperties: false }),
        response: { 200: Type.Object({ rollouts: Type.Array(RolloutView) }, { additionalProperties: false }) },
      },
    },
    async (req) => ({ rollouts: await rollouts.list(req.query.limit ?? 100) }),
  );
  app.get(
    '/rollouts/:id',
    { config: { permission: 'rollout:read' }, schema: { tags: ['rollouts'], params: RolloutIdParams, querystring: NoQuery, response: { 200: RolloutView } } },
    async (req) => rollouts.show(req.params.id),
  );
  app.get(
    '/rollouts/:id/targets',
    {
      config: { permission: 'rollout:read' },
      schema: {
        tags: ['rollouts'],
        params: RolloutIdParams,
        querystring: Type.Object(
          { status: Type.Optional(Type.Union(TARGET_STATUSES.map((s) => Type.Literal(s)))), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ targets: Type.Array(RolloutTargetView) }, { additionalProperties: false }) },
      },
    },
    async (req) => ({ targets: await rollouts.targets(req.params.id, req.query.status, req.query.limit ?? 1000) }),
  );
  for (const action of ['pause', 'resume', 'abort', 'rollback'] as const) {
    app.post(
      `/rollouts/:id/${action}`,
      { config: { permission: 'rollout:write' }, schema: { tags: ['rollouts'], params: RolloutIdParams, querystring: NoQuery, body: RolloutActionBody, response: { 200: RolloutView } } },
      async (req) => {
        const ctx = requestContext(req);
        const id = req.params.id;
        switch (action) {
          case 'pause':
            return rollouts.pause(ctx, id, reasonOf(req.body));
          case 'resume':
            return rollouts.resume(ctx, id);
          case 'abort':
            return rollouts.abort(ctx, id, reasonOf(req.body));
          case 'rollback':
            return rollouts.rollback(ctx, id, reasonOf(req.body));
        }
      },
    );
  }
};
