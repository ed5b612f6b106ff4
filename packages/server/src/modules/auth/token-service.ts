import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { API_TOKEN_PREFIX, FleetkeyError, type ApiToken, type CreatedToken, type Role } from '@fleetkey/protocol';
import type { Clock } from '../../context/clock.js';
import { iso, isoOrNull } from '../../context/clock.js';
import type { Actor, OpContext } from '../../context/op-context.js';
import type { UnitOfWork } from '../../context/unit-of-work.js';
import type { Store } from '../../store/open-store.js';
import type { ApiTokenRow } from '../../store/schema.js';

// 256 bits from the CSPRNG: long enough that a plain SHA-256 (no salt, no stretching) is a
// sound way to store it, and lookup by hash needs no per-row work.
const SECRET_BYTES = 32;
const TOKEN_SHAPE = new RegExp(`^${API_TOKEN_PREFIX}[A-Za-z0-9_-]{43}$`);
// last_used_at is a hint for operators, not a security control: write it at most once a minute
// per token so authentication does not become a write per request.
const LAST_USED_RESOLUTION_MS = 60_000;

function hashToken(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

function toApiToken(r: ApiTokenRow): ApiToken {
  return {
    id: r.id,
    name: r.name,
    role: r.role as Role,
    lastFour: r.last_four,
    createdAt: iso(r.created_at),
    createdBy: r.created_by,
    revokedAt: isoOrNull(r.revoked_at),
    lastUsedAt: isoOrNull(r.last_used_at),
  };
}

export class TokenService {
  constructor(
    private readonly store: Store,
    private readonly uow: UnitOfWork,
    private readonly clock: Clock,
  ) {}

  async create(ctx: OpContext, role: Role, name: string | undefined): Promise<CreatedToken> {
    return this.uow.run(ctx, { action: 'token.create' }, async (w) => {
      const secret = API_TOKEN_PREFIX + randomBytes(SECRET_BYTES).toString('base64url');
      const row: ApiTokenRow = {
        id: randomUUID(),
        name: name ?? null,
        role,
        token_hash: hashToken(secret),
        last_four: secret.slice(-4),
        created_at: w.now,
        created_by: ctx.actor.label,
        revoked_at: null,
        last_used_at: null,
      };
      await w.tx.insertInto('api_tokens').values(row).execute();
      w.subject(`token:${row.id}`);
      w.note({ role, name: name ?? null });
      return { token: toApiToken(row), secret };
    });
  }

  async list(): Promise<ApiToken[]> {
    const rows = await this.store.db.selectFrom('api_tokens').selectAll().orderBy('created_at', 'asc').execute();
    return rows.map(toApiToken);
  }

  async revoke(ctx: OpContext, id: string): Promise<ApiToken> {
    return this.uow.run(ctx, { action: 'token.revoke', subject: `token:${id}` }, async (w) => {
      const row = await w.tx.selectFrom('api_tokens').selectAll().where('id', '=', id).executeTakeFirst();
      if (row === undefined) throw new FleetkeyError('TOKEN_NOT_FOUND', { detail: id });
      if (row.revoked_at !== null) throw new FleetkeyError('TOKEN_ALREADY_REVOKED', { detail: id });
      if (row.role === 'admin') {
        const admins = await w.tx
          .selectFrom('api_tokens')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('role', '=', 'admin')
          .where('revoked_at', 'is', null)
          .executeTakeFirstOrThrow();
        // Revoking the last admin would lock every operator out of token management.
        if (Number(admins.n) <= 1) throw new FleetkeyError('LAST_ADMIN_TOKEN', { detail: id });
      }
      await w.tx.updateTable('api_tokens').set({ revoked_at: w.now }).where('id', '=', id).execute();
      w.note({ role: row.role });
      return toApiToken({ ...row, revoked_at: w.now });
    });
  }

  /**
   * Resolves a presented bearer secret to an actor, or null. The secret is never logged; the
   * lookup is by its hash and the stored hash is compared in constant time.
   */
  async authenticate(secret: string): Promise<Actor | null> {
    if (!TOKEN_SHAPE.test(secret)) return null;
    const hash = hashToken(secret);
    const row = await this.store.db.selectFrom('api_tokens').selectAll().where('token_hash', '=', hash).executeTakeFirst();
    if (row === undefined || row.revoked_at !== null) return null;
    if (!timingSafeEqual(Buffer.from(row.token_hash, 'hex'), Buffer.from(hash, 'hex'))) return null;
    const now = this.clock.now();
    if (row.last_used_at === null || now - row.last_used_at > LAST_USED_RESOLUTION_MS) {
      await this.store.db.updateTable('api_tokens').set({ last_used_at: now }).where('id', '=', row.id).execute();
    }
    return { kind: 'token', tokenId: row.id, role: row.role as Role, label: `token:${row.id}` };
  }

  /**
   * The actor of a token named by id (a console session names the token it was opened with):
   * null once the token is revoked, so revoking a token ends its console sessions too.
   */
  async actorById(id: string): Promise<Actor | null> {
    const row = await this.store.db.selectFrom('api_tokens').select(['id', 'role', 'revoked_at']).where('id', '=', id).executeTakeFirst();
    if (row === undefined || row.revoked_at !== null) return null;
    return { kind: 'token', tokenId: row.id, role: row.role as Role, label: `token:${row.id}` };
  }

  async hasActiveAdmin(): Promise<boolean> {
    const r = await this.store.db
      .selectFrom('api_tokens')
      .select('id')
      .where('role', '=', 'admin')
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return r !== undefined;
  }
}
