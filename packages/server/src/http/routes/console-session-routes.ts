import { ConsoleSession, FleetkeyError, NoBody, NoQuery } from '@fleetkey/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { ConsoleSessions } from '../../modules/console/session-service.js';
import { clearSessionCookie, setSessionCookie } from '../console-cookie.js';
import { requestContext } from '../request-context.js';

/**
 * /v1/console/session: sign-in exchanges the bearer token for a session cookie (every role may,
 * `api:read`); reading it gives the role and CSRF token back after a reload; DELETE signs out.
 * Runs inside the operator auth scope, so rate limits and refusal audit are the API's own.
 */
export const consoleSessionRoutes: FastifyPluginAsyncTypebox<{ sessions: ConsoleSessions }> = async (app, { sessions }) => {
  app.post(
    '/console/session',
    { config: { permission: 'api:read' }, schema: { tags: ['console'], querystring: NoQuery, body: NoBody, response: { 201: ConsoleSession } } },
    async (req, reply) => {
      // A session may not mint another: that would extend it past its expiry for ever.
      if (req.consoleSession !== null || req.actor?.kind !== 'token') throw new FleetkeyError('SIGN_IN_NEEDS_TOKEN');
      const opened = await sessions.open(requestContext(req));
      setSessionCookie(req, reply, opened.secret, opened.expiresAt);
      return reply.status(201).send({ role: req.actor.role, expiresAt: new Date(opened.expiresAt).toISOString(), csrfToken: opened.csrfToken });
    },
  );
  app.get(
    '/console/session',
    { config: { permission: 'api:read' }, schema: { tags: ['console'], querystring: NoQuery, response: { 200: ConsoleSession } } },
    async (req) => {
      const s = req.consoleSession;
      if (s === null) throw new FleetkeyError('CONSOLE_SESSION_REQUIRED');
      return { role: s.actor.role, expiresAt: new Date(s.expiresAt).toISOString(), csrfToken: s.csrfToken };
    },
  );
  app.delete(
    '/console/session',
    { config: { permission: 'api:read' }, schema: { tags: ['console'], querystring: NoQuery, body: NoBody, response: { 204: Type.Null() } } },
    async (req, reply) => {
      const s = req.consoleSession;
      if (s === null) throw new FleetkeyError('CONSOLE_SESSION_REQUIRED');
      await sessions.close(requestContext(req), s.id);
      clearSessionCookie(req, reply);
      return reply.status(204).send(null);
    },
  );
};
