import { isIP } from 'node:net';
import { createPublicKey, type KeyObject, type X509Certificate } from 'node:crypto';
import * as x509 from './x509-lib.js';
import { FleetkeyError } from '@fleetkey/protocol';
import type { Signer } from '../signer/signer.js';
import { randomSerial, wholeSeconds, type IssuedCertificate } from './device-profile.js';
import { keyIdentifier } from './hash.js';
import { readIssuer } from './issuer.js';
import { checkUrl } from './issuer-template.js';
import { createWithLibrary } from './library-sign.js';
import { OID } from './oids.js';

export interface Validity {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface RootCaOptions {
  /** RFC 4514 string, e.g. `CN=Fleetkey Root CA,O=Acme`. */
  readonly subject: string;
  readonly signer: Signer;
  readonly validity: Validity;
  /** basicConstraints pathLenConstraint; omitted = unlimited (RFC 5280 §4.2.1.9). */
  readonly pathLen?: number;
}

export interface IntermediateCaOptions {
  readonly subject: string;
  readonly publicKey: KeyObject;
  readonly issuerCertificate: X509Certificate | Buffer | string;
  readonly issuerSigner: Signer;
  /** 0 for a CA that issues only end-entity certificates. */
  readonly pathLen: number;
  readonly validity: Validity;
  /**
   * Where relying parties find the issuer's CRL (RFC 5280 §4.2.1.13) and the issuer's certificate
   * (AIA caIssuers, §4.2.2.1): `openssl verify -crl_check_all` and other full-chain revocation
   * checkers need the CRL covering each CA certificate, not only the leaf. http(s) URLs.
   */
  readonly crlUrl?: string;
  readonly caIssuersUrl?: string;
  /** OCSP for this CA certificate, only where a responder answers for its issuer. */
  readonly ocspUrl?: string;
}

export interface ServerCertificateOptions {
  readonly publicKey: KeyObject;
  readonly issuerCertificate: X509Certificate | Buffer | string;
  readonly issuerSigner: Signer;
  readonly dnsNames: readonly string[];
  readonly ipAddresses?: readonly string[];
  /** Defaults to CN = first DNS name (the CN is informational; clients match the SAN, RFC 6125 §6.4.4). */
  readonly subject?: string;
  readonly validity: Validity;
}

const spkiOf = (key: KeyObject): Buffer => {
  if (key.type !== 'public' && key.type !== 'private') throw new FleetkeyError('CERT_PROFILE_INVALID', { detail: 'publicKey must be an asymmetric key' });
  // A private KeyObject cannot export SPKI itself; its public half can.
  return (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' });
};

function checkValidity(v: Validity, issuerNotAfter?: Date): { notBefore: Date; notAfter: Date } {
  const nb = v.notBefore.getTime();
  const na = v.notAfter.getTime();
  if (!Number.isFinite(nb) || !Number.isFinite(na) || na <= nb) throw new FleetkeyError('CERT_VALIDITY_INVALID', { detail: 'notAfter must be after notBefore' });
  if (issuerNotAfter !== undefined && na > issuerNotAfter.getTime()) throw new FleetkeyError('CERT_VALIDITY_INVALID', { detail: 'notAfter beyond issuer notAfter' });
  return { notBefore: wholeSeconds(v.notBefore), notAfter: wholeSeconds(v.notAfter) };
}

function checkPathLen(pathLen: number | undefined): void {
  if (pathLen !== undefined && (!Number.isInteger(pathLen) || pathLen < 0 || pathLen > 16)) {
    throw new FleetkeyError('CERT_PROFILE_INVALID', { detail: 'pathLen must be an integer 0..16' });
  }
}

function parseName(subject: string): x509.Name {
  let name: x509.Name;
  try {
    name = new x509.Name(subject);
  } catch (e) {
    throw new FleetkeyError('CERT_PROFILE_INVALID', { detail: 'subject is not an RFC 4514 name', cause: e });
  }
  // The parser is lenient ("no equals sign" yields an empty name); a CA subject MUST be non-empty (RFC 5280 §4.1.2.6).
  if (name.toJSON().length === 0) throw new FleetkeyError('CERT_PROFILE_INVALID', { detail: 'subject is empty' });
  return name;
}

/** CA extensions: RFC 5280 §4.2.1.9 basicConstraints critical, §4.2.1.3 keyCertSign|cRLSign critical. */
function caExtensions(pathLen: number | undefined, ski: Buffer, aki: Buffer): x509.Extension[] {
  return [
    new x509.BasicConstraintsExtension(true, pathLen, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    new x509.SubjectKeyIdentifierExtension(ski.toString('hex'), false),
    new x509.AuthorityKeyIdentifierExtension(aki.toString('hex'), false),
  ];
}

/** A self-signed root CA certificate for `signer`'s key (P-256 → ES256, P-384 → ES384). */
export async function createRootCa(options: RootCaOptions): Promise<IssuedCertificate> {
  checkPathLen(options.pathLen);
  const { notBefore, notAfter } = checkValidity(options.validity);
  const spki = spkiOf(options.signer.publicKey);
  const ski = keyIdentifier(spki);
  const name = parseName(options.subject);
  return createWithLibrary(
    { serialNumber: randomSerial().toString('hex'), subject: name, issuer: name, notBefore, notAfter, publicKey: spki, extensions: caExtensions(options.pathLen, ski, ski) },
    options.signer,
  );
}

/** CRL DP and AIA of a CA certificate, for the URLs given (checked like the device profile's). */
function distributionExtensions(o: Pick<IntermediateCaOptions, 'crlUrl' | 'caIssuersUrl' | 'ocspUrl'>): x509.Extension[] {
  const out: x509.Extension[] = [];
  if (o.crlUrl !== undefined) out.push(new x509.CRLDistributionPointsExtension([checkUrl(o.crlUrl, 'crlUrl')], false));
  const aia: x509.AuthorityInfoAccessParams = {
    ...(o.ocspUrl === undefined ? {} : { ocsp: [checkUrl(o.ocspUrl, 'ocspUrl')] }),
    ...(o.caIssuersUrl === undefined ? {} : { caIssuers: [checkUrl(o.caIssuersUrl, 'caIssuersUrl')] }),
  };
  if (Object.keys(aia).length > 0) out.push(new x509.AuthorityInfoAccessExtension(aia, false));
  return out;
}

/** An intermediate (issuing) CA certificate signed by `issuerSigner`. */
export async function createIntermediateCa(options: IntermediateCaOptions): Promise<IssuedCertificate> {
  checkPathLen(options.pathLen);
  const issuer = readIssuer(options.issuerCertificate, options.issuerSigner);
  const { notBefore, notAfter } = checkValidity(options.validity, issuer.notAfter);
  const spki = spkiOf(options.publicKey);
  const extensions = [...caExtensions(options.pathLen, keyIdentifier(spki), issuer.keyId), ...distributionExtensions(options)];
  return createWithLibrary(
    {
      serialNumber: randomSerial().toString('hex'),
      subject: parseName(options.subject),
      issuer: new x509.Name(issuer.subjectDer),
      notBefore,
      notAfter,
      publicKey: spki,
      extensions,
    },
    options.issuerSigner,
  );
}

const DNS_NAME = /^(?=.{1,253}$)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** A TLS server certificate: EKU serverAuth, SAN DNS/IP (RFC 5280 §4.2.1.6), CA:false. */
export async function issueServerCertificate(options: ServerCertificateOptions): Promise<IssuedCertificate> {
  const issuer = readIssuer(options.issuerCertificate, options.issuerSigner);
  const { notBefore, notAfter } = checkValidity(options.validity, issuer.notAfter);
  const ips = options.ipAddresses ?? [];
  if (options.dnsNames.length + ips.length === 0) throw new FleetkeyError('CERT_PROFILE_INVALID', { detail: 'a server certificate needs a DNS name or IP' });
  for (const d of options.dnsNames) if (!DNS_NAME.test(d)) throw new FleetkeyError('CERT_PROFILE_INVALID', { detail: 'bad DNS name' });
  for (const ip of ips) if (isIP(ip) === 0) throw new FleetkeyError('CERT_PROFILE_INVALID', { detail: 'bad IP address' });
  const spki = spkiOf(options.publicKey);
  // RSA server keys also encipher the TLS 1.2 premaster secret (RFC 5246 §7.4.7.1); EC keys only sign.
  const ku = options.publicKey.asymmetricKeyType === 'rsa' ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment : x509.KeyUsageFlags.digitalSignature;
  const subject = options.subject ?? `CN=${options.dnsNames[0] ?? ips[0]!}`;
  return createWithLibrary(
    {
      serialNumber: randomSerial().toString('hex'),
      subject: parseName(subject),
      issuer: new x509.Name(issuer.subjectDer),
      notBefore,
      notAfter,
      publicKey: spki,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(ku, true),
        new x509.ExtendedKeyUsageExtension([OID.kpServerAuth], false),
        new x509.SubjectKeyIdentifierExtension(keyIdentifier(spki).toString('hex'), false),
        new x509.AuthorityKeyIdentifierExtension(issuer.keyId.toString('hex'), false),
        new x509.SubjectAlternativeNameExtension([...options.dnsNames.map((value) => ({ type: 'dns' as const, value })), ...ips.map((value) => ({ type: 'ip' as const, value }))], false),
      ],
    },
    options.issuerSigner,
  );
}
