import type { Actor } from '../context/op-context.js';
import type { Permission } from '../modules/auth/policy.js';
import type { AuthenticatedSession } from '../modules/console/session-service.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The permission a route needs. A /v1 route without one refuses to register. */
    permission?: Permission;
    /** The body is not JSON (a DER OCSP request): the route parses and checks it itself. */
    binaryBody?: boolean;
  }
  interface FastifyRequest {
    actor: Actor | null;
    /** Set when the request was authenticated by a console session cookie (not a bearer token). */
    consoleSession: AuthenticatedSession | null;
  }
}
