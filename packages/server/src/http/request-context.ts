import type { FastifyRequest } from 'fastify';
import type { OpContext } from '../context/op-context.js';

export function requestContext(req: FastifyRequest): OpContext {
  return {
    actor: req.actor ?? { kind: 'anonymous', label: `anonymous@${req.ip}` },
    requestId: req.id,
    remoteAddress: req.ip,
  };
}
