import { createHash, randomBytes, randomUUID, X509Certificate } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FleetkeyError } from '@fleetkey/protocol';
import {
  buildCrl,
  readVerifiedCrl,
  createIntermediateCa,
  createIssuerTemplate,
  createRootCa,
  exportRootKey,
  toPem,
  type IssuerTemplate,
  type Signer,
} from '@fleetkey/crypto';
import type { Clock } from '../../context/clock.js';
import type { OpContext } from '../../context/op-context.js';
import type { UnitOfWork } from '../../context/unit-of-work.js';
import type { Store } from '../../store/open-store.js';
import type { CaAuthorityRow, CrlRow } from '../../store/schema.js';
import { FileCaKeystore, type CaKeystore, type Curve } from './ca-keystore.js';

const YEAR = 365 * 86_400_000;
// Lifetimes: the root outlives everything it signs; IDevIDs (birth certificates) are meant to
// last the device's life, so the manufacturing CA is long-lived; the issuing CA is rotated.
const LIFETIME = { root: 25 * YEAR, manufacturing: 20 * YEAR, issuing: 5 * YEAR } as const;

export interface Authority {
  readonly row: CaAuthorityRow;
  readonly certificate: X509Certificate;
  readonly der: Buffer;
  signer: Signer | undefined;
  template: IssuerTemplate | undefined;
}

export interface PublicUrls {
  crl(issuerId: string): string;
  readonly ocsp: string;
  caIssuers(issuerId: string): string;
}

/** The public PKI URLs under one base (the routes in http/routes/pki-routes.ts). */
export function publicUrlsUnder(base: string): PublicUrls {
  return { crl: (id) => `${base}/pki/crl/${id}.crl`, ocsp: `${base}/pki/ocsp`, caIssuers: (id) => `${base}/pki/ca/${id}.crt` };
}

export interface RootCrlPolicy {
  /** nextUpdate of the pre-signed root CRL: it must outlast the time the root key spends offline. */
  readonly validityMs: number;
}

/**
 * The CA's authorities (root, issuing, manufacturing): created once, loaded at start, rotated.
 * Only this class holds Signers for issuing keys; the root key is opened only to sign a new
 * intermediate and can be exported and removed from the server.
 */
export class Authorities {
  readonly #byId = new Map<string, Authority>();
  readonly #changed = new Set<() => void>();
  #urls: PublicUrls | undefined;

  /** Called after the set of trusted authorities changes (rotation), e.g. to reload TLS trust. */
  onChange(listener: () => void): void {
    this.#changed.add(listener);
  }

  constructor(
    private readonly store: Store,
    private readonly uow: UnitOfWork,
    private readonly keystore: CaKeystore,
    private readonly clock: Clock,
    private readonly curve: Curve,
    private readonly keyDir: string,
    /** URLs put into CA certificates before the server listens (config ca.publicUrl, else the configured listener). */
    private readonly bootstrapUrls: PublicUrls,
    private readonly rootCrl: RootCrlPolicy,
  ) {}

  /** Creates root, issuing and manufacturing CAs on first start; returns whether it did. */
  async bootstrap(ctx: OpContext): Promise<boolean> {
    const existing = await this.store.db.selectFrom('ca_authorities').select('id').limit(1).execute();
    if (existing.length > 0) return false;
    const tag = randomBytes(3).toString('hex');
    const now = this.clock.now();
    const rootKey = await this.keystore.create('root', this.curve);
    const root = await createRootCa({
      subject: `CN=Fleetkey Root CA ${tag},O=Fleetkey`,
      signer: rootKey.signer,
      validity: { notBefore: new Date(now - 60_000), notAfter: new Date(now + LIFETIME.root) },
    });
    const rootRow = this.row('root', rootKey.keyRef, root.der, now);
    const rows: CaAuthorityRow[] = [rootRow];
    let crl: CrlRow;
    try {
      for (const role of ['issuing', 'manufacturing'] as const) {
        rows.push(await this.intermediate(role, tag, rootKey.signer, rootRow, now));
      }
      crl = await this.signRootCrl(rootRow, rootKey.signer, 1, now);
    } finally {
      await rootKey.signer.close();
    }
    await this.uow.run(ctx, { action: 'ca.init', subject: 'ca' }, async (w) => {
      await w.tx.insertInto('ca_authorities').values(rows).execute();
      await w.tx.insertInto('crls').values(crl).execute();
      w.note({ curve: this.curve, keystore: this.keystore.kind, authorities: rows.map((r) => ({ role: r.role, id: r.id, subject: r.subject })), rootCrlNextUpdate: new Date(crl.next_update).toISOString() });
    });
    return true;
  }

  /**
   * Re-signs the root's CRL with the root key, nextUpdate `validityMs` ahead (default: the
   * configured root CRL validity): the operator's explicit step while the root key is on this
   * server. The root signs only CA certificates and Fleetkey never revokes one, so the list is
   * empty; what matters is a current, verifiable CRL for full-chain checkers.
   *
   * @throws FleetkeyError CA_ROOT_OFFLINE when the root key was removed
   */
  async resignRootCrl(ctx: OpContext, validityMs = this.rootCrl.validityMs): Promise<{ crlNumber: number; nextUpdate: number }> {
    const root = this.root();
    return this.uow.run(ctx, { action: 'ca.root.crl', subject: `ca:${root.row.id}` }, async (w) => {
      if (root.row.key_ref === null || root.row.keystore === 'offline') throw new FleetkeyError('CA_ROOT_OFFLINE', { detail: 'the root key was removed from this server' });
      const prev = await w.tx.selectFrom('crls').select('crl_number').where('issuer_id', '=', root.row.id).executeTakeFirst();
      const signer = await this.keystore.open(root.row.key_ref);
      let crl: CrlRow;
      try {
        crl = await this.signRootCrl(root.row, signer, (prev?.crl_number ?? 0) + 1, w.now, validityMs);
      } finally {
        await signer.close();
      }
      if (prev === undefined) await w.tx.insertInto('crls').values(crl).execute();
      else await w.tx.updateTable('crls').set(crl).where('issuer_id', '=', root.row.id).execute();
      w.note({ crlNumber: crl.crl_number, nextUpdate: new Date(crl.next_update).toISOString() });
      return { crlNumber: crl.crl_number, nextUpdate: crl.next_update };
    });
  }

  /**
   * Installs a root CRL the operator signed offline with the exported root key (`fleetkey ca
   * sign-root-crl --root-key`): the way to keep the root CRL current while the key stays off the
   * server. It must verify under the root, be current, and carry a higher cRLNumber (RFC 5280
   * §5.2.3: numbers only grow), so an old CRL cannot be replayed over a newer one.
   *
   * @throws FleetkeyError CRL_PARAMS_INVALID
   */
  async installRootCrl(ctx: OpContext, der: Buffer): Promise<{ crlNumber: number; nextUpdate: number }> {
    const root = this.root();
    const crl = readVerifiedCrl(der, root.certificate);
    return this.uow.run(ctx, { action: 'ca.root.crl', subject: `ca:${root.row.id}` }, async (w) => {
      const prev = await w.tx.selectFrom('crls').select('crl_number').where('issuer_id', '=', root.row.id).executeTakeFirst();
      if (crl.crlNumber <= BigInt(prev?.crl_number ?? 0) || crl.crlNumber > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new FleetkeyError('CRL_PARAMS_INVALID', { detail: `cRLNumber ${crl.crlNumber} does not follow ${prev?.crl_number ?? 0}` });
      }
      if (crl.nextUpdate.getTime() <= w.now || crl.thisUpdate.getTime() > w.now + 5 * 60_000) {
        throw new FleetkeyError('CRL_PARAMS_INVALID', { detail: 'the CRL is not current' });
      }
      if (crl.entries !== 0) throw new FleetkeyError('CRL_PARAMS_INVALID', { detail: 'the root revokes no CA certificate Fleetkey knows of' });
      const values = { crl_number: Number(crl.crlNumber), this_update: crl.thisUpdate.getTime(), next_update: crl.nextUpdate.getTime(), der: der.toString('base64') };
      if (prev === undefined) await w.tx.insertInto('crls').values({ issuer_id: root.row.id, ...values }).execute();
      else await w.tx.updateTable('crls').set(values).where('issuer_id', '=', root.row.id).execute();
      w.note({ crlNumber: values.crl_number, nextUpdate: new Date(values.next_update).toISOString(), signedOffline: true });
      return { crlNumber: values.crl_number, nextUpdate: values.next_update };
    });
  }

  /**
   * A CA created before the root CRL existed gets one at start while its root key is here;
   * with the root offline nothing can sign it (`ca rotate` or re-signing needs the key back).
   */
  async ensureRootCrl(ctx: OpContext): Promise<void> {
    const root = this.all().find((a) => a.row.role === 'root');
    if (root === undefined || root.row.key_ref === null || root.row.keystore === 'offline') return;
    const existing = await this.store.db.selectFrom('crls').select('issuer_id').where('issuer_id', '=', root.row.id).executeTakeFirst();
    if (existing === undefined) await this.resignRootCrl(ctx);
  }

  /** Loads authorities that may still sign (active, retiring) and opens their signers. */
  async load(): Promise<void> {
    const rows = await this.store.db.selectFrom('ca_authorities').selectAll().where('status', '!=', 'retired').execute();
    for (const row of rows) {
      const der = new X509Certificate(row.certificate_pem).raw;
      const a: Authority = { row, certificate: new X509Certificate(der), der, signer: undefined, template: undefined };
      if (row.role !== 'root' && row.key_ref !== null) a.signer = await this.keystore.open(row.key_ref);
      this.#byId.set(row.id, a);
    }
    if (this.#urls !== undefined) this.setPublicUrls(this.#urls);
  }

  /** Builds the per-issuer DER templates once the public URL (CRL, OCSP) is known. */
  setPublicUrls(urls: PublicUrls): void {
    this.#urls = urls;
    for (const a of this.#byId.values()) {
      if (a.signer === undefined) continue;
      a.template = createIssuerTemplate({
        issuerCertificate: a.certificate,
        signer: a.signer,
        crlUrl: urls.crl(a.row.id),
        ocspUrl: urls.ocsp,
        caIssuersUrl: urls.caIssuers(a.row.id),
      });
    }
  }

  get(id: string): Authority | undefined {
    return this.#byId.get(id);
  }

  all(): Authority[] {
    return [...this.#byId.values()];
  }

  /** The authority new certificates of this role are issued from: the newest active one. */
  active(role: 'issuing' | 'manufacturing'): Authority {
    const candidates = this.all().filter((a) => a.row.role === role && a.row.status === 'active');
    const a = candidates.sort((x, y) => y.row.created_at - x.row.created_at)[0];
    if (a?.signer === undefined) throw new FleetkeyError('UNAVAILABLE', { detail: `no active ${role} CA` });
    return a;
  }

  /** Issuers whose certificates still authenticate: the active ones and those retiring after rotation. */
  trusted(role: 'issuing' | 'manufacturing'): Authority[] {
    return this.all().filter((a) => a.row.role === role);
  }

  root(): Authority {
    const r = this.all().find((a) => a.row.role === 'root');
    if (r === undefined) throw new FleetkeyError('UNAVAILABLE', { detail: 'no root CA' });
    return r;
  }

  /**
   * Rotation: a new issuing CA signed by the root; the previous one becomes `retiring` and stays
   * trusted (its certificates keep authenticating and its CRL keeps being signed) until it is retired.
   */
  async rotate(ctx: OpContext): Promise<Authority> {
    const root = this.root();
    if (root.row.key_ref === null || root.row.keystore === 'offline') {
      throw new FleetkeyError('CA_ROOT_OFFLINE', { detail: 'the root key was removed from this server' });
    }
    const rootSigner = await this.keystore.open(root.row.key_ref);
    const now = this.clock.now();
    const tag = randomBytes(3).toString('hex');
    let row: CaAuthorityRow;
    try {
      row = await this.intermediate('issuing', tag, rootSigner, root.row, now);
    } finally {
      await rootSigner.close();
    }
    const previous = this.all().filter((a) => a.row.role === 'issuing' && a.row.status === 'active');
    await this.uow.run(ctx, { action: 'ca.rotate', subject: `ca:${row.id}` }, async (w) => {
      await w.tx.insertInto('ca_authorities').values(row).execute();
      await w.tx.updateTable('ca_authorities').set({ status: 'retiring' }).where('role', '=', 'issuing').where('id', '!=', row.id).where('status', '=', 'active').execute();
      w.note({ newIssuer: row.id, retiring: previous.map((p) => p.row.id) });
    });
    for (const p of previous) p.row.status = 'retiring';
    const der = new X509Certificate(row.certificate_pem).raw;
    const a: Authority = { row, certificate: new X509Certificate(der), der, signer: await this.keystore.open(row.key_ref ?? ''), template: undefined };
    this.#byId.set(row.id, a);
    if (this.#urls !== undefined) this.setPublicUrls(this.#urls);
    for (const l of this.#changed) l();
    return a;
  }

  /** The root key, encrypted under a passphrase (scrypt + AES-256-GCM), for offline keeping. */
  async exportRoot(ctx: OpContext, passphrase: string): Promise<string> {
    const root = this.root();
    if (!(this.keystore instanceof FileCaKeystore) || root.row.key_ref === null) {
      throw new FleetkeyError('CA_ROOT_NOT_EXPORTABLE', { detail: `root key is ${root.row.key_ref === null ? 'offline' : 'in a PKCS#11 token'}` });
    }
    const armored = await exportRootKey(await this.keystore.privateKey(root.row.key_ref), passphrase);
    await this.uow.run(ctx, { action: 'ca.root.export', subject: `ca:${root.row.id}` }, async () => {});
    return armored;
  }

  /** Deletes the root key from this server (after an export); rotation then needs it restored. */
  async removeRootKey(ctx: OpContext): Promise<void> {
    const root = this.root();
    if (root.row.key_ref === null) throw new FleetkeyError('CA_ROOT_OFFLINE', { detail: 'already removed' });
    if (this.keystore.kind !== 'file') throw new FleetkeyError('CA_ROOT_NOT_EXPORTABLE', { detail: 'root key is in a PKCS#11 token' });
    const ref = root.row.key_ref;
    await this.uow.run(ctx, { action: 'ca.root.remove', subject: `ca:${root.row.id}` }, async (w) => {
      await w.tx.updateTable('ca_authorities').set({ key_ref: null, keystore: 'offline' }).where('id', '=', root.row.id).execute();
    });
    await rm(join(this.keyDir, ref), { force: true });
    root.row.key_ref = null;
    root.row.keystore = 'offline';
  }

  async close(): Promise<void> {
    for (const a of this.#byId.values()) await a.signer?.close();
  }

  private async intermediate(role: 'issuing' | 'manufacturing', tag: string, rootSigner: Signer, root: CaAuthorityRow, now: number): Promise<CaAuthorityRow> {
    const key = await this.keystore.create(role, this.curve);
    const label = role === 'issuing' ? 'Device Issuing CA' : 'Manufacturing CA';
    const urls = this.#urls ?? this.bootstrapUrls;
    const cert = await createIntermediateCa({
      subject: `CN=Fleetkey ${label} ${tag},O=Fleetkey`,
      publicKey: key.signer.publicKey,
      issuerCertificate: root.certificate_pem,
      issuerSigner: rootSigner,
      pathLen: 0,
      validity: { notBefore: new Date(now - 60_000), notAfter: new Date(now + LIFETIME[role]) },
      // The root's pre-signed CRL and certificate; no OCSP: nothing answers for the offline root.
      crlUrl: urls.crl(root.id),
      caIssuersUrl: urls.caIssuers(root.id),
    });
    await key.signer.close();
    return this.row(role, key.keyRef, cert.der, now);
  }

  private async signRootCrl(root: CaAuthorityRow, signer: Signer, crlNumber: number, now: number, validityMs = this.rootCrl.validityMs): Promise<CrlRow> {
    const thisUpdate = new Date(Math.floor(now / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + validityMs);
    const der = await buildCrl({ issuerCertificate: root.certificate_pem, signer, thisUpdate, nextUpdate, crlNumber: BigInt(crlNumber), entries: [] });
    return { issuer_id: root.id, crl_number: crlNumber, this_update: thisUpdate.getTime(), next_update: nextUpdate.getTime(), der: der.toString('base64') };
  }

  private row(role: CaAuthorityRow['role'], keyRef: string, der: Buffer, now: number): CaAuthorityRow {
    const cert = new X509Certificate(der);
    const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
    return {
      id: randomUUID(),
      role,
      status: 'active',
      keystore: this.keystore.kind,
      key_ref: keyRef,
      certificate_pem: toPem(der, 'CERTIFICATE'),
      subject: cert.subject.replaceAll('\n', ','),
      ski: createHash('sha1').update(spki).digest('hex'),
      not_before: Date.parse(cert.validFrom),
      not_after: Date.parse(cert.validTo),
      created_at: now,
      retired_at: null,
    };
  }
}
