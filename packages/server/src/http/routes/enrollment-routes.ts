import { CreatedEnrollment, CreateEnrollmentBody, DerivedKey, Enrollment, EnrollmentList, NoBody, NoQuery, Uuid } from '@fleetkey/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { EnrollmentService } from '../../modules/provisioning/enrollment-service.js';
import { requestContext } from '../request-context.js';

const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });

export const enrollmentRoutes: FastifyPluginAsyncTypebox<{ enrollments: EnrollmentService }> = async (app, { enrollments }) => {
  app.post(
    '/enrollments',
    // Enrollment definitions (a device→name table) can be large; the global body limit still applies.
    { config: { permission: 'enrollment:write' }, schema: { tags: ['enrollments'], querystring: NoQuery, body: CreateEnrollmentBody, response: { 201: CreatedEnrollment } } },
    async (req, reply) => reply.status(201).send(await enrollments.create(requestContext(req), req.body)),
  );
  app.get('/enrollments', { config: { permission: 'enrollment:read' }, schema: { tags: ['enrollments'], querystring: NoQuery, response: { 200: EnrollmentList } } }, async () => ({
    enrollments: await enrollments.list(),
  }));
  app.get('/enrollments/:id', { config: { permission: 'enrollment:read' }, schema: { tags: ['enrollments'], params: IdParams, querystring: NoQuery, response: { 200: Enrollment } } }, async (req) =>
    enrollments.show(req.params.id),
  );
  for (const [action, enabled] of [['enable', true], ['disable', false]] as const) {
    app.post(`/enrollments/:id/${action}`, { config: { permission: 'enrollment:write' }, schema: { tags: ['enrollments'], params: IdParams, querystring: NoQuery, body: NoBody, response: { 200: Enrollment } } }, async (req) =>
      enrollments.setEnabled(requestContext(req), req.params.id, enabled),
    );
  }
  app.post(
    '/enrollments/:id/derived-keys',
    {
      config: { permission: 'enrollment:derive' },
      schema: { tags: ['enrollments'], params: IdParams, querystring: NoQuery, body: Type.Object({ deviceId: Uuid }, { additionalProperties: false }), response: { 200: DerivedKey } },
    },
    async (req) => enrollments.deriveKey(requestContext(req), req.params.id, req.body.deviceId),
  );
};
