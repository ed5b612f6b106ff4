import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  ArtifactStored,
  AssignReleaseBody,
  CreateReleaseBody,
  DesiredRelease,
  DraftTargetsBody,
  FleetkeyError,
  ModelString,
  NoQuery,
  Release,
  ReleaseList,
  Sha256Hex,
  SubmitRootBody,
  TargetsMetadata,
  UnassignReleaseBody,
  Uuid,
} from '@fleetkey/protocol';
import type { UpdatesModule } from '../../modules/updates/updates-module.js';
import { requestContext } from '../request-context.js';
import { sendMetadata, sendTarget } from './update-serving.js';

const File = Type.Object({ file: Type.String({ maxLength: 300 }) }, { additionalProperties: false });
/**
 * Targets metadata lists every release ever published (up to 10,000 targets, ~300 bytes each):
 * its routes take more than the API's default body limit, and only them.
 */
const METADATA_BODY_LIMIT = 8 * 1024 * 1024;
const Accepted = Type.Object({ version: Type.Integer() }, { additionalProperties: false });

/**
 * Operator plane of the update repository: releases (create, list, show, assign), artifact
 * uploads, root submissions, and the image repository's tree read-only (`/v1/updates/repo/...`).
 */
export const updateRoutes: FastifyPluginAsyncTypebox<{ updates: UpdatesModule }> = async (app, { updates }) => {
  // Artifacts are streamed: the body is left unread here and piped by the route into the store.
  app.addContentTypeParser('application/octet-stream', (_req, _payload, done) => done(null, undefined));

  app.post(
    '/updates/artifacts',
    {
      config: { permission: 'release:create', binaryBody: true },
      // The declared length is required: the upload is cut one byte past it (endless data).
      schema: {
        tags: ['updates'],
        querystring: Type.Object({ length: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), sha256: Type.Optional(Sha256Hex) }, { additionalProperties: false }),
        response: { 201: ArtifactStored },
      },
    },
    async (req, reply) => {
      if (req.query.length > updates.artifacts.maxBytes) {
        reply.header('connection', 'close');
        throw new FleetkeyError('REPO_ARTIFACT_TOO_LARGE', { detail: `declared ${req.query.length} > cap ${updates.artifacts.maxBytes}` });
      }
      if (!/^application\/octet-stream\b/.test(req.headers['content-type'] ?? '')) throw new FleetkeyError('UNSUPPORTED_MEDIA_TYPE', { detail: 'artifacts are application/octet-stream' });
      const declaredHeader = req.headers['content-length'];
      if (declaredHeader !== undefined && Number(declaredHeader) > req.query.length) {
        reply.header('connection', 'close');
        throw new FleetkeyError('REPO_ARTIFACT_TOO_LARGE', { detail: `content-length ${declaredHeader} > declared ${req.query.length}` });
      }
      try {
        const stored = await updates.releases.uploadArtifact(requestContext(req), req.raw, req.query.length, req.query.sha256);
        return await reply.status(201).send(stored);
      } catch (e) {
        // What is left of the body is not read: the connection closes after the refusal.
        reply.header('connection', 'close');
        throw e;
      }
    },
  );

  app.post(
    '/updates/root',
    { config: { permission: 'updates:root' }, schema: { tags: ['updates'], querystring: NoQuery, body: SubmitRootBody, response: { 201: Accepted } } },
    async (req, reply) => reply.status(201).send(await updates.repository.submitRoot(requestContext(req), req.body.repo, req.body.root)),
  );
  app.post(
    '/updates/targets',
    { bodyLimit: METADATA_BODY_LIMIT, config: { permission: 'release:create' }, schema: { tags: ['updates'], querystring: NoQuery, body: TargetsMetadata, response: { 201: Accepted } } },
    async (req, reply) => reply.status(201).send(await updates.repository.submitTargets(requestContext(req), req.body)),
  );
  app.get(
    '/updates/online-keys',
    { config: { permission: 'api:read' }, schema: { tags: ['updates'], querystring: NoQuery } },
    async () => updates.keys.publicKeys(),
  );

  app.post(
    '/releases/draft',
    { config: { permission: 'release:create' }, schema: { tags: ['releases'], querystring: NoQuery, body: DraftTargetsBody } },
    async (req) => {
      const b = req.body;
      const days = b.expiresInDays ?? 365;
      const signed = await updates.repository.draftTargets(
        { [b.targetName]: { length: b.length, hashes: { sha256: b.sha256 }, custom: { model: b.model, version: b.version, ...(b.minVersion === undefined ? {} : { minVersion: b.minVersion }) } } },
        Date.now() + days * 86_400_000,
      );
      return { signatures: [], signed };
    },
  );
  app.post(
    '/releases',
    { bodyLimit: METADATA_BODY_LIMIT, config: { permission: 'release:create' }, schema: { tags: ['releases'], querystring: NoQuery, body: CreateReleaseBody, response: { 201: Release } } },
    async (req, reply) => reply.status(201).send(await updates.releases.create(requestContext(req), req.body)),
  );
  app.get(
    '/releases',
    {
      config: { permission: 'release:read' },
      schema: { tags: ['releases'], querystring: Type.Object({ model: Type.Optional(ModelString), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) }, { additionalProperties: false }), response: { 200: ReleaseList } },
    },
    async (req) => ({ releases: await updates.releases.list({ ...(req.query.model === undefined ? {} : { model: req.query.model }), ...(req.query.limit === undefined ? {} : { limit: req.query.limit }) }) }),
  );
  app.get(
    '/releases/desired',
    { config: { permission: 'release:read' }, schema: { tags: ['releases'], querystring: NoQuery, response: { 200: Type.Object({ desired: Type.Array(DesiredRelease) }, { additionalProperties: false }) } } },
    async () => ({ desired: await updates.desired.list() }),
  );
  app.get(
    '/releases/:id',
    { config: { permission: 'release:read' }, schema: { tags: ['releases'], params: Type.Object({ id: Uuid }, { additionalProperties: false }), querystring: NoQuery, response: { 200: Release } } },
    async (req) => updates.releases.show(req.params.id),
  );
  app.post(
    '/releases/assign',
    { config: { permission: 'release:assign' }, schema: { tags: ['releases'], querystring: NoQuery, body: AssignReleaseBody, response: { 200: DesiredRelease } } },
    async (req) => updates.desired.assign(requestContext(req), req.body.name, req.body.releaseId),
  );
  app.post(
    '/releases/unassign',
    { config: { permission: 'release:assign' }, schema: { tags: ['releases'], querystring: NoQuery, body: UnassignReleaseBody } },
    async (req, reply) => {
      await updates.desired.unassign(requestContext(req), req.body.name);
      return reply.status(204).send();
    },
  );

  // The image repository, read-only, for operators and mirrors (same files as the device plane).
  app.get('/updates/repo/metadata/:file', { config: { permission: 'api:read' }, schema: { hide: true, params: File, querystring: NoQuery } }, async (req, reply) =>
    sendMetadata(reply, await updates.reader.image(req.params.file)),
  );
  app.get('/updates/repo/targets/:file', { config: { permission: 'api:read' }, schema: { hide: true, params: File, querystring: NoQuery } }, async (req, reply) =>
    sendTarget(req, reply, updates.reader, req.params.file),
  );
  app.get('/updates/repo/root.json', { config: { permission: 'api:read' }, schema: { hide: true, querystring: NoQuery } }, async (_req, reply) => sendMetadata(reply, await updates.reader.latestRoot('image')));
  app.get('/updates/director/root.json', { config: { permission: 'api:read' }, schema: { hide: true, querystring: NoQuery } }, async (_req, reply) =>
    sendMetadata(reply, await updates.reader.latestRoot('director')),
  );
  app.get('/updates/director/metadata/:file', { config: { permission: 'api:read' }, schema: { hide: true, params: File, querystring: NoQuery } }, async (req, reply) =>
    sendMetadata(reply, await updates.reader.directorRoot(req.params.file)),
  );
};
