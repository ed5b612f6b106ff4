import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * The console's session cookie. Over TLS it is `__Host-` prefixed (RFC 6265bis §4.1.3.2: Secure,
 * Path=/, no Domain, so no sibling host or plain-HTTP page can set or shadow it); over plain HTTP
 * (the default loopback listener) browsers refuse both Secure and the prefix, so it is unprefixed.
 * Always HttpOnly (no script reads it) and SameSite=Strict (no cross-site request carries it).
 */
export const COOKIE_TLS = '__Host-fleetkey-session';
export const COOKIE_PLAIN = 'fleetkey-session';

const isTls = (req: FastifyRequest) => req.protocol === 'https';

/** The session secret from the Cookie header (RFC 6265 §5.4), or undefined. Only the first occurrence counts. */
export function readSessionCookie(req: FastifyRequest): string | undefined {
  const header = req.headers.cookie;
  if (typeof header !== 'string' || header.length > 8192) return undefined;
  const wanted = isTls(req) ? COOKIE_TLS : COOKIE_PLAIN;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === wanted) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function setSessionCookie(req: FastifyRequest, reply: FastifyReply, secret: string, expiresAt: number): void {
  const maxAge = Math.max(0, Math.floor((expiresAt - Date.now()) / 1000));
  const name = isTls(req) ? COOKIE_TLS : COOKIE_PLAIN;
  reply.header('set-cookie', `${name}=${secret}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${isTls(req) ? '; Secure' : ''}`);
}

export function clearSessionCookie(req: FastifyRequest, reply: FastifyReply): void {
  const name = isTls(req) ? COOKIE_TLS : COOKIE_PLAIN;
  reply.header('set-cookie', `${name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict${isTls(req) ? '; Secure' : ''}`);
}

/**
 * Origin check for cookie-authenticated mutations (a second wall behind SameSite and the CSRF
 * token): a browser sends Origin on every cross-origin and every non-GET request (Fetch standard
 * §3.1 "origin header"); when present it must be this server's own origin.
 */
export function sameOrigin(req: FastifyRequest): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  return origin === `${req.protocol}://${req.host}`;
}
