import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import { checkCrlIssuer, readCrlInput, validateChain, type ParsedCrl } from '@fleetkey/crypto';
import { FleetkeyError, type EnrollmentCrl, type EnrollmentCrlList, type RevocationPolicy } from '@fleetkey/protocol';
import { iso } from '../../context/clock.js';
import type { OpContext } from '../../context/op-context.js';
import type { UnitOfWork, Work } from '../../context/unit-of-work.js';
import type { Store, Tx } from '../../store/open-store.js';
import type { EnrollmentCrlRow, EnrollmentRow } from '../../store/schema.js';
import { parsePemCertificates } from './enrollment-service.js';

export type CrlSource = { readonly kind: 'upload' } | { readonly kind: 'fetch'; readonly url: string };

const invalid = (detail: string): never => {
  throw new FleetkeyError('ENROLLMENT_CRL_INVALID', { detail });
};

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The CRL bytes a caller sent: PEM `X509 CRL`, or base64 DER. */
export function crlBytes(text: string): Buffer {
  const t = text.trim();
  if (t.startsWith('-----BEGIN')) return Buffer.from(t, 'latin1');
  if (!/^[A-Za-z0-9+/=\s]+$/.test(t)) return invalid('neither PEM nor base64 DER');
  return Buffer.from(t.replace(/\s+/g, ''), 'base64');
}

function toApi(r: EnrollmentCrlRow, now: number): EnrollmentCrl {
  return {
    id: r.id,
    enrollmentId: r.enrollment_id,
    issuer: r.issuer,
    issuerFingerprintSha256: r.issuer_sha256,
    scope: r.scope === '' ? null : r.scope,
    thisUpdate: iso(r.this_update),
    nextUpdate: iso(r.next_update),
    crlNumber: r.crl_number,
    entries: r.entries,
    source: r.source,
    url: r.url,
    stale: r.next_update < now,
    updatedAt: iso(r.updated_at),
  };
}

/**
 * The CA certificate that signed a CRL when it is not an anchor (a manufacturer's issuing CA):
 * first of `pem`, validated (RFC 5280 §6.1) up to one of `anchors` with the rest of `pem`.
 */
function issuerOf(pem: string | undefined, anchors: readonly X509Certificate[], at: Date): X509Certificate[] {
  if (pem === undefined) return [];
  let certs: X509Certificate[] = [];
  try {
    certs = parsePemCertificates(pem);
  } catch {
    invalid('issuerPem is not PEM certificates');
  }
  const [issuer, ...rest] = certs;
  if (issuer === undefined) return invalid('no certificate in issuerPem');
  if (!issuer.ca) invalid('the CRL issuer is not a CA certificate');
  const r = validateChain({ leaf: issuer, intermediates: rest, trustAnchors: anchors, time: at });
  if (!r.ok) invalid(`the CRL issuer does not chain to an anchor: ${r.reason}: ${r.detail}`);
  return [issuer];
}

/**
 * CRLs of an enrollment's outside anchors (RFC 5280 §5): accepted only when one of the
 * enrollment's anchors signed them (name, cRLSign, signature) and they are complete, direct and
 * fresh; kept newest-first per (anchor, issuingDistributionPoint scope) so an older CRL, replayed
 * or re-served, can never replace a newer one. Parsed once per stored version.
 */
export class EnrollmentCrls {
  readonly #parsed = new Map<string, { key: string; crl: ParsedCrl }>();

  constructor(
    private readonly store: Store,
    private readonly uow: UnitOfWork,
  ) {}

  /** Adds a CRL to enrollment `id` (operator upload or background fetch), audited. */
  add(ctx: OpContext, id: string, der: Buffer, source: CrlSource, issuerPem?: string): Promise<EnrollmentCrl> {
    return this.uow.run(ctx, { action: source.kind === 'upload' ? 'enrollment.crl.add' : 'enrollment.crl.fetch', subject: `enrollment:${id}` }, (w) => this.addInWork(w, id, der, source, issuerPem));
  }

  private async addInWork(w: Work, id: string, der: Buffer, source: CrlSource, issuerPem: string | undefined): Promise<EnrollmentCrl> {
    const e = await w.tx.selectFrom('enrollments').selectAll().where('id', '=', id).executeTakeFirst();
    if (e === undefined) throw new FleetkeyError('ENROLLMENT_NOT_FOUND', { detail: id });
    if (e.attestation !== 'x509' || e.trust_pem === null) invalid('only X.509 enrollments with their own trust anchors keep CRLs');
    const crl = readCrlInput(der);
    if ('code' in crl) return invalid(crl.detail);
    const at = new Date(w.now);
    // The anchor that signed it; every check of the path validator but the per-certificate scope.
    const anchors = parsePemCertificates(e.trust_pem ?? '');
    let anchor: X509Certificate | undefined;
    const why: string[] = [];
    for (const a of [...issuerOf(issuerPem, anchors, at), ...anchors]) {
      const r = checkCrlIssuer(crl, a.raw, at);
      if (r === null) {
        anchor = a;
        break;
      }
      why.push(r);
    }
    if (anchor === undefined) return invalid(`not a usable CRL of any anchor or of the given issuer: ${why.join('; ') || 'no anchors'}`);
    const anchorSha = anchor.fingerprint256.replaceAll(':', '').toLowerCase();
    const scope = crl.idp === undefined ? '' : sha256(crl.idp.raw);
    const prev = await w.tx.selectFrom('enrollment_crls').selectAll().where('enrollment_id', '=', id).where('issuer_sha256', '=', anchorSha).where('scope', '=', scope).executeTakeFirst();
    const number = crl.crlNumber?.toString() ?? null;
    if (prev !== undefined) {
      // RFC 5280 §5.2.3: cRLNumber grows; thisUpdate orders CRLs without one. Equal is not newer.
      const newer =
        crl.thisUpdate.getTime() > prev.this_update ||
        (crl.thisUpdate.getTime() === prev.this_update && number !== null && prev.crl_number !== null && BigInt(number) > BigInt(prev.crl_number));
      const older = prev.crl_number !== null && number !== null && BigInt(number) < BigInt(prev.crl_number);
      if (!newer || older) {
        throw new FleetkeyError('ENROLLMENT_CRL_OUTDATED', { detail: `stored CRL of ${iso(prev.this_update)} (number ${prev.crl_number ?? '-'}), offered ${crl.thisUpdate.toISOString()} (number ${number ?? '-'})` });
      }
    }
    const row: EnrollmentCrlRow = {
      id: prev?.id ?? randomUUID(),
      enrollment_id: id,
      issuer_sha256: anchorSha,
      scope,
      issuer: anchor.subject.replaceAll('\n', ','),
      der: crl.der.toString('base64'),
      this_update: crl.thisUpdate.getTime(),
      next_update: (crl.nextUpdate as Date).getTime(),
      crl_number: number,
      entries: crl.revoked.size,
      source: source.kind,
      url: source.kind === 'fetch' ? source.url : null,
      created_at: prev?.created_at ?? w.now,
      updated_at: w.now,
    };
    if (prev === undefined) await w.tx.insertInto('enrollment_crls').values(row).execute();
    else await w.tx.updateTable('enrollment_crls').set(row).where('id', '=', prev.id).execute();
    w.note({ issuer: row.issuer, anchor: anchorSha, scope: scope || null, thisUpdate: iso(row.this_update), nextUpdate: iso(row.next_update), crlNumber: number, entries: row.entries, source: source.kind, url: row.url });
    return toApi(row, w.now);
  }

  async list(id: string): Promise<EnrollmentCrlList> {
    const e = await this.store.db.selectFrom('enrollments').select(['revocation', 'crl_urls']).where('id', '=', id).executeTakeFirst();
    if (e === undefined) throw new FleetkeyError('ENROLLMENT_NOT_FOUND', { detail: id });
    const rows = await this.store.db.selectFrom('enrollment_crls').selectAll().where('enrollment_id', '=', id).orderBy('created_at').execute();
    const now = Date.now();
    return { revocation: e.revocation as RevocationPolicy, crlUrls: JSON.parse(e.crl_urls) as string[], crls: rows.map((r) => toApi(r, now)) };
  }

  /** The stored CRLs of an enrollment, parsed (cached per stored version), read in `tx`. */
  async parsedFor(tx: Tx, e: EnrollmentRow): Promise<ParsedCrl[]> {
    // The DER (megabytes for a big CRL) is read only when the cached parse is not of this version.
    const rows = await tx.selectFrom('enrollment_crls').select(['id', 'updated_at', 'this_update']).where('enrollment_id', '=', e.id).execute();
    const out: ParsedCrl[] = [];
    for (const r of rows) {
      const key = `${r.updated_at}:${r.this_update}`;
      let hit = this.#parsed.get(r.id);
      if (hit?.key !== key) {
        const row = await tx.selectFrom('enrollment_crls').select('der').where('id', '=', r.id).executeTakeFirst();
        if (row === undefined) continue;
        const crl = readCrlInput(Buffer.from(row.der, 'base64'));
        if ('code' in crl) continue; // stored only after parsing: cannot happen, and would only be "unknown"
        hit = { key, crl };
        this.#parsed.set(r.id, hit);
      }
      out.push(hit.crl);
    }
    return out;
  }
}
