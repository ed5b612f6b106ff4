import type { Actor } from '../context/op-context.js';
import type { Permission } from '../modules/auth/policy.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The permission a route needs. A /v1 route without one refuses to register. */
    permission?: Permission;
    /** The body is not JSON (a DER OCSP request): the route parses and checks it itself. */
    binaryBody?: boolean;
  }
  interface FastifyRequest {
    actor: Actor | null;
  }
}
