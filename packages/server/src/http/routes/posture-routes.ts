import { PostureQuery, PostureReport } from '@fleetkey/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { PostureService } from '../../modules/posture/posture-service.js';

/** The fleet posture audit (issue 13): read-only, so any role that reads the API may run it. */
export const postureRoutes: FastifyPluginAsyncTypebox<{ posture: PostureService }> = async (app, { posture }) => {
  app.get('/posture', { config: { permission: 'api:read' }, schema: { tags: ['posture'], querystring: PostureQuery, response: { 200: PostureReport } } }, async (req) =>
    posture.report(req.query),
  );
};
