import { buildCrl, type CrlReason } from '@fleetkey/crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import type { Logger } from 'pino';
import type { Clock } from '../../context/clock.js';
import type { Store } from '../../store/open-store.js';
import type { Authorities } from './authorities.js';

/**
 * CRLs per issuer (RFC 5280 §5): regenerated after every revocation (coalesced: a burst of
 * revocations costs one or two signatures, not one each) and on a timer at half the interval, so
 * the published CRL's nextUpdate is always ahead of any client that fetched it. CRL numbers only
 * grow (§5.2.3), kept in the store so a restart continues the sequence.
 */
export class CrlService {
  readonly #pending = new Map<string, Promise<void>>();
  readonly #again = new Set<string>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: Store,
    private readonly authorities: Authorities,
    private readonly clock: Clock,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    const tick = () => {
      for (const a of this.authorities.all()) if (a.signer !== undefined) this.schedule(a.row.id);
    };
    tick();
    this.#timer = setInterval(tick, Math.max(1000, Math.floor(this.intervalMs / 2)));
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await Promise.allSettled([...this.#pending.values()]);
  }

  /** Requests a regeneration; resolves when a CRL including every revocation committed so far is stored. */
  schedule(issuerId: string): Promise<void> {
    const running = this.#pending.get(issuerId);
    if (running !== undefined) {
      this.#again.add(issuerId);
      return running.then(() => this.#pending.get(issuerId));
    }
    const p = this.#generate(issuerId)
      .catch((e: unknown) => this.log.error({ err: e, issuerId }, 'CRL generation failed'))
      .finally(() => {
        this.#pending.delete(issuerId);
        if (this.#again.delete(issuerId)) void this.schedule(issuerId);
      });
    this.#pending.set(issuerId, p);
    return p;
  }

  /** The current CRL (DER), generating the first one if none exists yet. */
  async current(issuerId: string): Promise<Buffer> {
    let row = await this.store.db.selectFrom('crls').select('der').where('issuer_id', '=', issuerId).executeTakeFirst();
    if (row === undefined) {
      if (this.authorities.get(issuerId)?.signer === undefined) throw new FleetkeyError('NOT_FOUND', { detail: `no CRL issuer ${issuerId}` });
      await this.schedule(issuerId);
      row = await this.store.db.selectFrom('crls').select('der').where('issuer_id', '=', issuerId).executeTakeFirst();
    }
    if (row === undefined) throw new FleetkeyError('UNAVAILABLE', { detail: `CRL for ${issuerId} not generated` });
    return Buffer.from(row.der, 'base64');
  }

  async #generate(issuerId: string): Promise<void> {
    const issuer = this.authorities.get(issuerId);
    if (issuer?.signer === undefined) return;
    const now = this.clock.now();
    // Revoked certificates, and superseded ones whose grace has passed: a relying party that only
    // reads our CRL (Mosquitto, a partner's broker) then refuses them too.
    const rows = await this.store.db
      .selectFrom('certificates')
      .select(['serial', 'status', 'revoked_at', 'revocation_reason', 'grace_until', 'not_after'])
      .where('issuer_id', '=', issuerId)
      .where((eb) => eb.or([eb('status', '=', 'revoked'), eb.and([eb('status', '=', 'superseded'), eb('grace_until', '<=', now)])]))
      .execute();
    const entries = rows
      .filter((r) => r.not_after > now - 86_400_000) // §3.3: expired certificates may leave the CRL
      .map((r) => ({
        serialHex: r.serial,
        revokedAt: new Date(r.status === 'revoked' ? (r.revoked_at ?? now) : (r.grace_until ?? now)),
        reason: (r.status === 'revoked' ? (r.revocation_reason ?? 'unspecified') : 'superseded') as CrlReason,
      }));
    await this.store.transaction(async (tx) => {
      let q = tx.selectFrom('crls').select('crl_number').where('issuer_id', '=', issuerId);
      if (this.store.dialect === 'postgres') q = q.forUpdate();
      const prev = await q.executeTakeFirst();
      const crlNumber = (prev?.crl_number ?? 0) + 1;
      const thisUpdate = new Date(Math.floor(now / 1000) * 1000);
      const nextUpdate = new Date(thisUpdate.getTime() + this.intervalMs);
      const der = await buildCrl({ issuerCertificate: issuer.certificate, signer: issuer.signer!, thisUpdate, nextUpdate, crlNumber: BigInt(crlNumber), entries });
      const values = { crl_number: crlNumber, this_update: thisUpdate.getTime(), next_update: nextUpdate.getTime(), der: der.toString('base64') };
      if (prev === undefined) await tx.insertInto('crls').values({ issuer_id: issuerId, ...values }).execute();
      else await tx.updateTable('crls').set(values).where('issuer_id', '=', issuerId).execute();
    });
  }
}
