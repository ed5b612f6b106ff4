import { DeviceEvidence, EvidenceResetBody, NoQuery, Uuid } from '@fleetkey/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { EvidenceService } from '../../modules/provisioning/evidence-service.js';
import { requestContext } from '../request-context.js';

const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });

/** Evidence bound to a device's physical identity; resetting it is an admin's decision (issue 10). */
export const evidenceRoutes: FastifyPluginAsyncTypebox<{ evidence: EvidenceService }> = async (app, { evidence }) => {
  app.get('/devices/:id/evidence', { config: { permission: 'device:read' }, schema: { tags: ['devices'], params: IdParams, querystring: NoQuery, response: { 200: DeviceEvidence } } }, async (req) =>
    evidence.show(req.params.id),
  );
  app.post(
    '/devices/:id/evidence/reset',
    { config: { permission: 'device:evidence' }, schema: { tags: ['devices'], params: IdParams, querystring: NoQuery, body: EvidenceResetBody, response: { 200: DeviceEvidence } } },
    async (req) => evidence.reset(requestContext(req), req.params.id, req.body.reason),
  );
};
