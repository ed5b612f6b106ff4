import type { ConsoleSession, ErrorBody, Role } from '@fleetkey/protocol';

/** A refusal from the API, with its catalogue code (callers branch on `code`, never on text). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let csrfToken: string | null = null;
let onSignedOut: () => void = () => undefined;

export function setSignedOutHandler(fn: () => void): void {
  onSignedOut = fn;
}

/**
 * Every call goes to the operator API with the session cookie (same origin, HttpOnly: this code
 * never sees it). Mutations carry the CSRF token the sign-in returned; the server refuses any
 * cookie mutation without it.
 */
export async function api<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method !== 'GET' && csrfToken !== null) headers['x-csrf-token'] = csrfToken;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`/v1${path}`, { method, headers, credentials: 'same-origin', ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  const parsed: unknown = text === '' ? null : JSON.parse(text);
  if (!res.ok) {
    const e = (parsed ?? {}) as Partial<ErrorBody>;
    if (res.status === 401) onSignedOut();
    throw new ApiError(res.status, e.code ?? 'UNKNOWN', e.message ?? `HTTP ${res.status}`);
  }
  return parsed as T;
}

/** GET that answers null on 404 (an API another branch may not have merged yet: posture, rollouts). */
export async function optional<T>(path: string): Promise<T | null> {
  try {
    return await api<T>('GET', path);
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.code === 'ROUTE_NOT_FOUND')) return null;
    throw e;
  }
}

/** Sign-in: the token is sent once, as a bearer, and exchanged for the cookie. It is not kept. */
export async function signIn(token: string): Promise<ConsoleSession> {
  const res = await fetch('/v1/console/session', { method: 'POST', headers: { authorization: `Bearer ${token}` }, credentials: 'same-origin' });
  const body: unknown = await res.json();
  if (!res.ok) {
    const e = body as Partial<ErrorBody>;
    throw new ApiError(res.status, e.code ?? 'UNKNOWN', e.message ?? `HTTP ${res.status}`);
  }
  const s = body as ConsoleSession;
  csrfToken = s.csrfToken;
  return s;
}

export async function currentSession(): Promise<ConsoleSession | null> {
  const res = await fetch('/v1/console/session', { credentials: 'same-origin' });
  if (!res.ok) return null;
  const s = (await res.json()) as ConsoleSession;
  csrfToken = s.csrfToken;
  return s;
}

export async function signOut(): Promise<void> {
  try {
    await api<void>('DELETE', '/console/session');
  } finally {
    csrfToken = null;
  }
}

/**
 * What each role may do, mirrored from the server's policy table only to hide buttons a role
 * cannot use. The server decides: a forced request is refused there.
 */
const WRITE: Record<string, readonly Role[]> = {
  'name:write': ['operator', 'admin'],
  'device:status': ['operator', 'admin'],
  'cert:revoke': ['operator', 'admin'],
  'command:send': ['operator', 'admin'],
  'audit:read': ['operator', 'admin'],
  'audit:verify': ['admin'],
  'webhook:admin': ['admin'],
};

export function can(role: Role, permission: keyof typeof WRITE): boolean {
  return WRITE[permission]?.includes(role) ?? false;
}
