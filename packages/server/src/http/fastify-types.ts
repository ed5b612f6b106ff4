import type { Actor } from '../context/op-context.js';
import type { Permission } from '../modules/auth/policy.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The permission a route needs. A /v1 route without one refuses to register. */
    permission?: Permission;
  }
  interface FastifyRequest {
    actor: Actor | null;
  }
}
