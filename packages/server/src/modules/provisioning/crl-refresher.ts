import { crlDistributionPointUrls } from '@fleetkey/crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import type { Logger } from 'pino';
import type { Clock } from '../../context/clock.js';
import { systemContext } from '../../context/op-context.js';
import type { Store } from '../../store/open-store.js';
import type { EnrollmentCrlRow, EnrollmentRow } from '../../store/schema.js';
import type { OutboundDestinations } from '../events/webhook-destinations.js';
import { requestDestination } from '../events/webhook-request.js';
import type { EnrollmentCrls } from './enrollment-crls.js';
import { parsePemCertificates } from './enrollment-service.js';

const HOUR = 3_600_000;

export interface CrlFetchLimits {
  /** For the whole exchange, headers and body. */
  readonly timeoutMs: number;
  readonly maxBytes: number;
}

/**
 * GETs one CRL over http(s) (RFC 5280 §4.2.1.13: CRLs are signed, so plain http is the norm)
 * through the outbound destination policy of webhooks: the URL (an operator's `crlUrls` or an
 * outside CA's distribution point) must not lead to loopback, private, link-local or metadata
 * addresses unless allowlisted, nor to this server, and the connection goes to the address
 * checked. No redirects, a time budget for the whole exchange and a size cap enforced while
 * reading, so a slow or endless distribution point costs at most `timeoutMs` and `maxBytes`.
 * @throws FleetkeyError ENROLLMENT_CRL_URL_REFUSED, or Error for a failed exchange
 */
export async function fetchCrl(url: string, limits: CrlFetchLimits, destinations: OutboundDestinations): Promise<Buffer> {
  const dest = await destinations.check(url, 'crl');
  const res = await requestDestination(
    dest,
    { method: 'GET', headers: { accept: 'application/pkix-crl, application/x-pkcs7-crl, */*' } },
    { timeoutMs: limits.timeoutMs, maxResponseBytes: limits.maxBytes, overflow: 'fail' },
  );
  if (res.status !== 200) throw new Error(`CRL URL ${url} answered ${res.status}`);
  return res.body;
}

/** Where an enrollment's CRLs come from: its `crlUrls` and its anchors' own distribution points. */
export function crlSources(e: EnrollmentRow): string[] {
  const anchors = e.trust_pem === null ? [] : parsePemCertificates(e.trust_pem);
  return [...new Set([...(JSON.parse(e.crl_urls) as string[]), ...anchors.flatMap((a) => crlDistributionPointUrls(a.raw))])];
}

/** A stored CRL is due for refresh in the second half of its validity (at most an hour before nextUpdate). */
export function refreshDue(row: Pick<EnrollmentCrlRow, 'this_update' | 'next_update'>, now: number): boolean {
  const margin = Math.min(HOUR, Math.floor((row.next_update - row.this_update) / 2));
  return now >= row.next_update - margin;
}

/**
 * The provisioning module's background task that keeps the CRLs of every X.509 enrollment with
 * outside anchors (and a revocation policy other than `none`) fresh: each source is fetched when
 * no CRL from it is stored or the stored one is due, checked and stored by {@link EnrollmentCrls}
 * (audited as `enrollment.crl.fetch`). A failing source is retried on the next tick; a CRL that
 * goes stale meanwhile refuses provisioning under `require` (fail closed).
 */
export class CrlRefresher {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | null = null;
  #again = false;
  #stopped = false;
  /** Per (enrollment, url): no attempt before this instant (after a failure or an unchanged CRL). */
  readonly #notBefore = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly crls: EnrollmentCrls,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly intervalMs: number,
    private readonly limits: CrlFetchLimits,
    private readonly destinations: OutboundDestinations,
  ) {}

  start(): void {
    this.#stopped = false;
    this.kick();
    this.#timer = setInterval(() => this.kick(), this.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.#running;
  }

  /** Runs a refresh pass now (or right after the one running); resolves when it is done. */
  kick(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#running !== null) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#pass()
      .catch((e: unknown) => this.log.error({ err: e }, 'CRL refresh pass failed'))
      .finally(() => {
        this.#running = null;
        if (this.#again) {
          this.#again = false;
          void this.kick();
        }
      });
    return this.#running;
  }

  async #pass(): Promise<void> {
    const enrollments = await this.store.db
      .selectFrom('enrollments')
      .selectAll()
      .where('attestation', '=', 'x509')
      .where('trust_pem', 'is not', null)
      .where('revocation', '!=', 'none')
      .where('enabled', '=', 1)
      .execute();
    for (const e of enrollments) {
      const stored = await this.store.db.selectFrom('enrollment_crls').selectAll().where('enrollment_id', '=', e.id).execute();
      for (const url of crlSources(e)) {
        if (this.#stopped) return;
        await this.#refresh(e, url, stored);
      }
    }
  }

  async #refresh(e: EnrollmentRow, url: string, stored: readonly EnrollmentCrlRow[]): Promise<void> {
    const now = this.clock.now();
    const key = `${e.id} ${url}`;
    if ((this.#notBefore.get(key) ?? 0) > now) return;
    const mine = stored.filter((r) => r.url === url);
    if (mine.length > 0 && !mine.some((r) => refreshDue(r, now))) return;
    try {
      const der = await fetchCrl(url, this.limits, this.destinations);
      // The distribution point still serves what we hold: nothing to store, nothing to audit.
      if (stored.some((r) => Buffer.from(r.der, 'base64').equals(der))) {
        this.#notBefore.set(key, now + Math.floor(this.intervalMs / 2));
        return;
      }
      await this.crls.add(systemContext('crl-refresh'), e.id, der, { kind: 'fetch', url });
      this.#notBefore.delete(key);
    } catch (err) {
      this.#notBefore.set(key, now + Math.floor(this.intervalMs / 2));
      const detail = err instanceof FleetkeyError ? `${err.code}: ${err.detail ?? ''}` : err instanceof Error ? err.message : String(err);
      this.log.warn({ enrollmentId: e.id, url, detail }, 'CRL refresh failed');
    }
  }
}
