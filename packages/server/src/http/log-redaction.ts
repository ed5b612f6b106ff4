import type { FastifyRequest } from 'fastify';

// Operator tokens carry a recognisable prefix (identity.ts API_TOKEN_PREFIX); anything that looks
// like one is cut from whatever text reaches the log.
const TOKEN = /fkt_[A-Za-z0-9_-]*/g;

export const scrubSecrets = (text: string): string => text.replace(TOKEN, 'fkt_[redacted]');

/**
 * A request URL as it may be logged: the path with token-like segments cut, and of the query
 * only the parameter names. A query value can be a credential (`?token=`, `?sig=`, a token pasted
 * in the wrong place) and the log outlives every token's lifetime.
 */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  const path = scrubSecrets((q < 0 ? url : url.slice(0, q)).slice(0, 512));
  if (q < 0) return path;
  const names = url
    .slice(q + 1)
    .split('&')
    .slice(0, 16)
    .map((p) => `${scrubSecrets(p.split('=')[0]!.slice(0, 64))}=[redacted]`);
  return `${path}?${names.join('&')}`;
}

/** Pino serializers for the operator plane's request log lines. */
export const logSerializers = {
  req: (req: FastifyRequest) => ({ method: req.method, url: redactUrl(req.url), remoteAddress: req.ip }),
  err: (err: Error & { code?: unknown }) => ({
    type: err.name,
    code: typeof err.code === 'string' ? err.code : undefined,
    message: scrubSecrets(String(err.message)),
    stack: err.stack === undefined ? undefined : scrubSecrets(err.stack),
  }),
};
