import { createHash, verify, X509Certificate } from 'node:crypto';
import { validateChain } from '@fleetkey/crypto';
import { UUID_PATTERN } from '@fleetkey/protocol';
import type { Work } from '../../../context/unit-of-work.js';
import type { EnrollmentRow } from '../../../store/schema.js';
import type { Authorities } from '../../ca/authorities.js';
import { parsePemCertificates } from '../enrollment-service.js';
import type { EnrollmentCrls } from '../enrollment-crls.js';
import { x509Evidence } from '../evidence.js';
import { matchEnrollment } from '../enrollment-match.js';
import { AttestationMethod, refused, type Attested } from './method.js';

const UUID = new RegExp(UUID_PATTERN);

export interface X509Evidence {
  /** The IDevID. */
  readonly leaf: X509Certificate | undefined;
  /** What else the device sent; read only when the leaf does not chain to an anchor by itself (costly over TLS). */
  readonly intermediates: () => readonly X509Certificate[];
  /** Proof of possession: the TLS handshake (CertificateVerify), or a signed single-use nonce. */
  readonly possession:
    | { readonly kind: 'tls' }
    | { readonly kind: 'nonce'; readonly nonce: string; readonly signature: Buffer; readonly fresh: boolean }
    | { readonly kind: 'none' };
}

/** The device id an IDevID names: SAN `urn:uuid:` (ours and 802.1AR-style), else a UUID CN. */
export function deviceIdOf(cert: X509Certificate): string | null {
  const san = /URI:urn:uuid:([0-9a-fA-F-]{36})/.exec(cert.subjectAltName ?? '')?.[1];
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
  for (const c of [san, cn]) if (c !== undefined && UUID.test(c.toLowerCase())) return c.toLowerCase();
  return null;
}

/**
 * X.509 attestation: the IDevID chain is validated (our path validator, not a signature-only
 * chain builder) against the enrollment's trust anchors — by default Fleetkey's manufacturing CA
 * — at the current time; revoked IDevIDs of our manufacturing CA are refused, and those of an
 * outside CA by the CRLs the enrollment keeps (its `revocation` policy says what a missing or
 * stale CRL does).
 */
export class X509Method extends AttestationMethod<never, X509Evidence> {
  readonly type = 'x509' as const;

  constructor(
    private readonly authorities: Authorities,
    private readonly crls: EnrollmentCrls,
  ) {
    super();
  }

  override async attest(w: Work, e: X509Evidence): Promise<Attested> {
    if (e.possession.kind === 'none') throw refused('no proof of possession: no client certificate and no signed nonce');
    if (e.possession.kind === 'nonce' && !e.possession.fresh) throw refused('unknown, used or expired nonce');
    const leaf = e.leaf;
    if (leaf === undefined) throw refused('no IDevID presented');
    const deviceId = deviceIdOf(leaf);
    if (deviceId === null) throw refused(`IDevID ${leaf.subject} names no device id`);
    if (e.possession.kind === 'nonce') {
      // ECDSA over the nonce's UTF-8 bytes with the IDevID key: possession without mTLS.
      const ok = verify('sha256', Buffer.from(e.possession.nonce, 'utf8'), leaf.publicKey, e.possession.signature);
      if (!ok) throw refused('nonce signature does not verify with the IDevID key');
    }
    const fingerprint = leaf.fingerprint256.replaceAll(':', '').toLowerCase();
    const revocationOf = new Map<string, string>();
    const validFor = async (enrollment: EnrollmentRow): Promise<{ ok: boolean; reason: string }> => {
      const own = enrollment.trust_pem === null;
      const anchors = own ? this.authorities.trusted('manufacturing').map((a) => a.certificate) : parsePemCertificates(enrollment.trust_pem ?? '');
      // RFC 5280 §6.3 for outside anchors, from the CRLs the enrollment keeps fresh. Our own
      // manufacturing CA's revocations are in our certificates table (checked below).
      const policy = own ? 'none' : enrollment.revocation;
      const revocation = policy === 'none' ? undefined : { crls: await this.crls.parsedFor(w.tx, enrollment), unknown: policy === 'best-effort' ? ('allow' as const) : ('fail' as const) };
      const check = (intermediates: readonly X509Certificate[]) =>
        validateChain({ leaf, intermediates: [...intermediates], trustAnchors: anchors, time: new Date(w.now), requiredKeyUsage: ['digitalSignature'], ...(revocation === undefined ? {} : { revocation }) });
      // Most IDevIDs chain straight to the anchor (our manufacturing CA); only a foreign
      // manufacturer's chain needs the intermediates the device sent.
      let r = check([]);
      if (!r.ok && r.reason === 'untrusted') r = check(e.intermediates());
      if (r.ok) revocationOf.set(enrollment.id, own ? 'fleetkey' : (r.revocation ?? 'not checked'));
      return r.ok ? { ok: true, reason: '' } : { ok: false, reason: `${r.reason}: ${r.detail}` };
    };
    let failure = '';
    const enrollment = await matchEnrollment(w, 'x509', deviceId, async (g) => {
      const v = await validFor(g);
      if (!v.ok) failure = v.reason;
      return v.ok;
    }).catch((err: unknown) => {
      throw failure === '' ? err : refused(`IDevID chain refused: ${failure}`);
    });
    if (enrollment.kind === 'individual') {
      const v = await validFor(enrollment);
      if (!v.ok) throw refused(`IDevID chain refused: ${v.reason}`);
      if (enrollment.idevid_fingerprint !== null && enrollment.idevid_fingerprint !== fingerprint) throw refused('IDevID fingerprint differs from the enrollment');
    }
    const ours = await w.tx.selectFrom('certificates').select(['status', 'kind']).where('fingerprint', '=', fingerprint).executeTakeFirst();
    if (ours !== undefined && (ours.status === 'revoked' || ours.kind !== 'idevid')) throw refused(`IDevID ${fingerprint} is ${ours.status} ${ours.kind}`);
    const spki = leaf.publicKey.export({ type: 'spki', format: 'der' });
    return {
      deviceId,
      enrollment,
      method: 'x509',
      evidence: x509Evidence(leaf),
      forbiddenKeys: [createHash('sha256').update(spki).digest('hex')],
      detail: { idevid: fingerprint, possession: e.possession.kind, revocation: revocationOf.get(enrollment.id) ?? null },
    };
  }
}
