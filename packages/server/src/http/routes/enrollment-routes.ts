import { AddEnrollmentCrlBody, CreatedEnrollment, CreateEnrollmentBody, DerivedKey, Enrollment, EnrollmentCrl, EnrollmentCrlList, EnrollmentList, NoBody, NoQuery, Uuid } from '@fleetkey/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { crlBytes, type EnrollmentCrls } from '../../modules/provisioning/enrollment-crls.js';
import type { EnrollmentService } from '../../modules/provisioning/enrollment-service.js';
import { requestContext } from '../request-context.js';

const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });

// A CRL of 16 MiB (DER) in base64 inside JSON, above the global body limit for this route only.
const CRL_BODY_LIMIT = 23 * 1024 * 1024;

export const enrollmentRoutes: FastifyPluginAsyncTypebox<{ enrollments: EnrollmentService; crls: EnrollmentCrls }> = async (app, { enrollments, crls }) => {
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
  // CRLs of the enrollment's outside anchors (RFC 5280 §5): verified against those anchors, audited.
  app.post(
    '/enrollments/:id/crls',
    { bodyLimit: CRL_BODY_LIMIT, config: { permission: 'enrollment:write' }, schema: { tags: ['enrollments'], params: IdParams, querystring: NoQuery, body: AddEnrollmentCrlBody, response: { 201: EnrollmentCrl } } },
    async (req, reply) => reply.status(201).send(await crls.add(requestContext(req), req.params.id, crlBytes(req.body.crl), { kind: 'upload' }, req.body.issuerPem)),
  );
  app.get('/enrollments/:id/crls', { config: { permission: 'enrollment:read' }, schema: { tags: ['enrollments'], params: IdParams, querystring: NoQuery, response: { 200: EnrollmentCrlList } } }, async (req) =>
    crls.list(req.params.id),
  );
  app.post(
    '/enrollments/:id/derived-keys',
    {
      config: { permission: 'enrollment:derive' },
      schema: { tags: ['enrollments'], params: IdParams, querystring: NoQuery, body: Type.Object({ deviceId: Uuid }, { additionalProperties: false }), response: { 200: DerivedKey } },
    },
    async (req) => enrollments.deriveKey(requestContext(req), req.params.id, req.body.deviceId),
  );
};
