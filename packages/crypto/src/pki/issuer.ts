import { X509Certificate } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import type { Signer } from '../signer/signer.js';
import { DerError, children, decodeOid, readExactly, readTlv } from './der.js';
import { keyIdentifier } from './hash.js';
import { OID } from './oids.js';
import { fromPem, looksLikePem } from './pem.js';

/** What signing under an issuer needs, read once from its certificate. */
export interface IssuerInfo {
  readonly certificate: X509Certificate;
  readonly der: Buffer;
  /** The issuer's subject Name exactly as encoded in its certificate (RFC 5280 §4.1.2.4 name chaining). */
  readonly subjectDer: Buffer;
  readonly spkiDer: Buffer;
  /** The issuer's own SKI when present, else computed: AKI in what it signs must match it. */
  readonly keyId: Buffer;
  readonly notAfter: Date;
}

export function toX509(input: X509Certificate | Buffer | string): X509Certificate {
  if (input instanceof X509Certificate) return input;
  try {
    const der = looksLikePem(input) ? fromPem(input.toString(), ['CERTIFICATE'], 'CERT_ISSUER_INVALID') : Buffer.from(input);
    return new X509Certificate(der);
  } catch (e) {
    if (e instanceof FleetkeyError) throw e;
    throw new FleetkeyError('CERT_ISSUER_INVALID', { detail: 'issuer certificate does not parse', cause: e });
  }
}

/**
 * Reads an issuer certificate and checks it may sign with `signer`: it must be a CA
 * (RFC 5280 §4.2.1.9) and the signer's public key must be the certificate's, so a
 * misconfigured key pairing fails at start, not in every relying party.
 */
export function readIssuer(input: X509Certificate | Buffer | string, signer: Signer | undefined, requireCa = true): IssuerInfo {
  const certificate = toX509(input);
  const der = certificate.raw;
  if (requireCa && !certificate.ca) throw new FleetkeyError('CERT_ISSUER_INVALID', { detail: 'issuer certificate is not a CA' });
  const spkiDer = certificate.publicKey.export({ type: 'spki', format: 'der' });
  if (signer !== undefined && !signer.publicKey.export({ type: 'spki', format: 'der' }).equals(spkiDer)) {
    throw new FleetkeyError('CERT_ISSUER_INVALID', { detail: 'signer key does not match issuer certificate' });
  }
  try {
    const tbs = children(readExactly(der, 0x30))[0];
    if (tbs === undefined) throw new DerError('no TBSCertificate');
    const fields = children(tbs);
    const at = fields[0]?.tag === 0xa0 ? 1 : 0; // version is EXPLICIT [0] DEFAULT v1 (RFC 5280 §4.1)
    const subject = fields[at + 4];
    if (subject === undefined || subject.tag !== 0x30) throw new DerError('no subject');
    const extensions = fields.find((f) => f.tag === 0xa3);
    let keyId: Buffer | undefined;
    if (extensions !== undefined) {
      for (const ext of children(readTlv(extensions.value))) {
        const [id, ...rest] = children(ext);
        if (id !== undefined && decodeOid(id.value) === OID.subjectKeyIdentifier) {
          const value = rest[rest.length - 1];
          if (value !== undefined) keyId = Buffer.from(readExactly(value.value, 0x04).value);
        }
      }
    }
    return {
      certificate,
      der,
      subjectDer: Buffer.from(subject.raw),
      spkiDer,
      keyId: keyId ?? keyIdentifier(spkiDer),
      notAfter: new Date(certificate.validTo),
    };
  } catch (e) {
    throw new FleetkeyError('CERT_ISSUER_INVALID', { detail: 'issuer certificate structure', cause: e });
  }
}
