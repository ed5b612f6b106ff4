import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import type { Clock } from '../../context/clock.js';
import type { Actor, OpContext } from '../../context/op-context.js';
import type { UnitOfWork } from '../../context/unit-of-work.js';
import type { Store } from '../../store/open-store.js';
import type { TokenService } from '../auth/token-service.js';

// 256 bits from the CSPRNG, stored as a plain SHA-256 like API tokens (token-service.ts): too long
// to guess, so the hash needs no salt and the lookup is one indexed read.
const SECRET_BYTES = 32;
const SECRET_SHAPE = /^[A-Za-z0-9_-]{43}$/;
const CSRF_LABEL = 'fleetkey-console-csrf/v1';

export interface OpenedSession {
  readonly id: string;
  /** The cookie value: shown once, in the Set-Cookie header, never stored. */
  readonly secret: string;
  readonly csrfToken: string;
  readonly expiresAt: number;
}

export interface AuthenticatedSession {
  readonly id: string;
  readonly actor: Extract<Actor, { kind: 'token' }>;
  readonly expiresAt: number;
  readonly csrfToken: string;
}

const hash = (secret: string) => createHash('sha256').update(secret, 'utf8').digest('hex');

/**
 * The CSRF token is derived from the session secret (HMAC), so it needs no storage and a page that
 * knows the token cannot derive the cookie; a cross-site page knows neither (the double-submit
 * pattern without a readable cookie: OWASP CSRF Prevention Cheat Sheet, "signed double-submit").
 */
const csrfOf = (secret: string) => createHmac('sha256', secret).update(CSRF_LABEL).digest('base64url');

/** Console sessions: an API token exchanged for a cookie, stored hashed, ended by logout, expiry or the token's revocation. */
export class ConsoleSessions {
  #sweeper: NodeJS.Timeout | null = null;

  constructor(
    private readonly store: Store,
    private readonly uow: UnitOfWork,
    private readonly tokens: TokenService,
    private readonly clock: Clock,
    readonly ttlMs: number,
  ) {}

  /** Opens a session for a token actor; audited as `console.sign_in`. */
  async open(ctx: OpContext): Promise<OpenedSession> {
    const actor = ctx.actor;
    if (actor.kind !== 'token') throw new FleetkeyError('FORBIDDEN', { detail: 'only an API token opens a console session' });
    return this.uow.run(ctx, { action: 'console.sign_in' }, async (w) => {
      const secret = randomBytes(SECRET_BYTES).toString('base64url');
      const id = randomUUID();
      const expiresAt = w.now + this.ttlMs;
      await w.tx.insertInto('console_sessions').values({ id, secret_hash: hash(secret), token_id: actor.tokenId, created_at: w.now, expires_at: expiresAt }).execute();
      w.subject(`console-session:${id}`);
      w.note({ tokenId: actor.tokenId, expiresAt: new Date(expiresAt).toISOString() });
      return { id, secret, csrfToken: csrfOf(secret), expiresAt };
    });
  }

  /** The session a cookie secret names, or null (unknown, expired, or its token revoked). */
  async authenticate(secret: string): Promise<AuthenticatedSession | null> {
    if (!SECRET_SHAPE.test(secret)) return null;
    const h = hash(secret);
    const row = await this.store.db.selectFrom('console_sessions').selectAll().where('secret_hash', '=', h).executeTakeFirst();
    if (row === undefined || !timingSafeEqual(Buffer.from(row.secret_hash, 'hex'), Buffer.from(h, 'hex'))) return null;
    if (Number(row.expires_at) <= this.clock.now()) return null;
    const actor = await this.tokens.actorById(row.token_id);
    if (actor === null || actor.kind !== 'token') return null;
    return { id: row.id, actor, expiresAt: Number(row.expires_at), csrfToken: csrfOf(secret) };
  }

  /** Constant-time check of a presented CSRF header against the session's token. */
  static csrfMatches(session: AuthenticatedSession, presented: string | undefined): boolean {
    if (presented === undefined) return false;
    const a = Buffer.from(session.csrfToken);
    const b = Buffer.from(presented);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** Logout: the row is deleted, so the cookie is worthless even if a copy survives in a browser. */
  async close(ctx: OpContext, id: string): Promise<void> {
    await this.uow.run(ctx, { action: 'console.sign_out', subject: `console-session:${id}` }, async (w) => {
      await w.tx.deleteFrom('console_sessions').where('id', '=', id).execute();
    });
  }

  /** Expired rows are worthless (authenticate refuses them); deleting them keeps the table small. */
  async sweep(): Promise<number> {
    const r = await this.store.db.deleteFrom('console_sessions').where('expires_at', '<=', this.clock.now()).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  start(intervalMs = 600_000): void {
    this.#sweeper ??= setInterval(() => void this.sweep().catch(() => undefined), intervalMs);
    this.#sweeper.unref();
  }

  stop(): void {
    if (this.#sweeper !== null) clearInterval(this.#sweeper);
    this.#sweeper = null;
  }
}
