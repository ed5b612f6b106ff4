import { FleetkeyError, NoQuery } from '@fleetkey/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { ConsoleAssets } from '../../modules/console/console-assets.js';

/**
 * Content-Security-Policy of the console (CSP Level 3): scripts and styles only from this origin,
 * no inline script or style element, no eval, no framing (clickjacking), no plugins, no <base>
 * rewrite; fetches and the event stream only to this origin.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

const FILE = Type.String({ pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*\\.(js|css|svg|png|ico|woff2)$', maxLength: 128 });

/** The console at `/` (hash routes, so only `/` and its hashed assets are ever requested). */
export const consoleRoutes: FastifyPluginAsyncTypebox<{ assets: ConsoleAssets }> = async (app, { assets }) => {
  // Runs after the app-wide onSend (which sets no-store): hashed assets may be cached for ever.
  app.addHook('onSend', async (req, reply) => {
    reply.header('content-security-policy', CONSOLE_CSP);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cross-origin-opener-policy', 'same-origin');
    reply.header('cross-origin-resource-policy', 'same-origin');
    reply.header('permissions-policy', 'camera=(), microphone=(), geolocation=()');
    if (reply.statusCode === 200 && req.url.startsWith('/assets/')) reply.header('cache-control', 'public, max-age=31536000, immutable');
    else reply.header('cache-control', 'no-cache');
  });

  app.get('/', { schema: { hide: true, querystring: NoQuery } }, async (_req, reply) => {
    if (assets.index === null) throw new FleetkeyError('UNAVAILABLE', { detail: 'console not built (npm run build)' });
    return reply.type('text/html; charset=utf-8').send(assets.index);
  });

  app.get('/assets/:file', { schema: { hide: true, querystring: NoQuery, params: Type.Object({ file: FILE }, { additionalProperties: false }) } }, async (req, reply) => {
    const asset = assets.files.get(req.params.file);
    if (asset === undefined) throw new FleetkeyError('NOT_FOUND', { detail: 'no such console asset' });
    return reply.type(asset.type).send(asset.body);
  });
};
