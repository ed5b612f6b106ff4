import type { FastifyInstance, RouteOptions } from 'fastify';

const closed = (schema: unknown): boolean =>
  typeof schema === 'object' && schema !== null && (schema as { additionalProperties?: unknown }).additionalProperties === false;

/**
 * Schema first at every edge, made structural: a route registered on this app without a schema
 * for each part a request can carry fails the boot, so a new route cannot run with any body or
 * query by omission. Query and path schemas must be closed objects (unknown parameters refused).
 * Routes that take no body say so with NoBody, no query with NoQuery; a route whose body is not
 * JSON (OCSP's DER) declares `config.binaryBody` and its own content-type parser.
 */
export function requireRouteSchemas(app: FastifyInstance): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    const where = `route ${String(route.method)} ${route.url}`;
    const schema = route.schema ?? {};
    if (!closed(schema.querystring)) throw new Error(`${where} declares no closed querystring schema`);
    if (/[:*]/.test(route.url ?? '') && !closed(schema.params)) throw new Error(`${where} declares no closed params schema`);
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const readsBody = methods.some((m) => m !== 'GET' && m !== 'HEAD');
    if (readsBody && schema.body === undefined && route.config?.binaryBody !== true) throw new Error(`${where} declares no body schema`);
  });
}
