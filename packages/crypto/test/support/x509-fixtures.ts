/**
 * Certificates minted in-test with @peculiar/x509 (real signatures, real DER) for the path
 * validator's tests, and the DER helpers that build the extensions @peculiar/x509 has no class for.
 */
// tsyringe (inside @peculiar/x509) needs the Reflect metadata API before it loads.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { expect } from 'vitest';
import { validateChain, type ValidationInput, type ValidationResult } from '../../src/x509/validate/index.js';

x509.cryptoProvider.set(webcrypto as unknown as ReturnType<typeof x509.cryptoProvider.get>);

export type CryptoKeyPair = webcrypto.CryptoKeyPair;
export type SigningAlgorithm = { name: string; hash?: string; namedCurve?: string; modulusLength?: number; publicExponent?: Uint8Array };

export const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
export const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
export const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const DAY = 86_400_000;
export const NOW = new Date('2030-06-01T00:00:00Z');

export interface Made {
  der: Buffer;
  keys: CryptoKeyPair;
  name: string;
}

export interface MakeOptions {
  name: string;
  /** Subject DN string; defaults to `CN=${name}`, '' for an empty subject. */
  subject?: string;
  issuer?: Made;
  keys?: CryptoKeyPair;
  /** Certify this public key (one we hold no private key for, e.g. a TPM's EK) instead of `keys`. */
  publicKey?: webcrypto.CryptoKey;
  ca?: boolean;
  /** Leave basicConstraints out entirely. */
  noBasicConstraints?: boolean;
  pathLen?: number;
  keyUsage?: x509.KeyUsageFlags;
  eku?: string[];
  dns?: string[];
  ips?: string[];
  notBefore?: Date;
  notAfter?: Date;
  /** AKI value to write instead of the signer's SKI. */
  akiOverride?: string;
  extra?: x509.Extension[];
  signingAlgorithm?: SigningAlgorithm;
}

export const newKeys = (): Promise<CryptoKeyPair> => webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;

export async function make(o: MakeOptions): Promise<Made> {
  const keys = o.keys ?? (await newKeys());
  const subjectKey = o.publicKey ?? keys.publicKey;
  const signer = o.issuer?.keys ?? keys;
  const ca = o.ca ?? false;
  const ext: x509.Extension[] = [];
  if (!o.noBasicConstraints) ext.push(new x509.BasicConstraintsExtension(ca, o.pathLen, true));
  const ku = o.keyUsage ?? (ca ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign : x509.KeyUsageFlags.digitalSignature);
  ext.push(new x509.KeyUsagesExtension(ku, true));
  ext.push(await x509.SubjectKeyIdentifierExtension.create(subjectKey));
  if (o.akiOverride) ext.push(new x509.AuthorityKeyIdentifierExtension(o.akiOverride));
  else if (o.issuer) ext.push(await x509.AuthorityKeyIdentifierExtension.create(signer.publicKey));
  if (o.eku) ext.push(new x509.ExtendedKeyUsageExtension(o.eku));
  const names = [...(o.dns ?? []).map((value) => ({ type: 'dns' as const, value })), ...(o.ips ?? []).map((value) => ({ type: 'ip' as const, value }))];
  if (names.length) ext.push(new x509.SubjectAlternativeNameExtension(names));
  ext.push(...(o.extra ?? []));
  const cert = await x509.X509CertificateGenerator.create({
    subject: o.subject ?? `CN=${o.name}`,
    issuer: `CN=${o.issuer?.name ?? o.name}`,
    notBefore: o.notBefore ?? new Date(NOW.getTime() - 30 * DAY),
    notAfter: o.notAfter ?? new Date(NOW.getTime() + 365 * DAY),
    publicKey: subjectKey,
    signingKey: signer.privateKey,
    signingAlgorithm: o.signingAlgorithm ?? EC,
    extensions: ext,
  });
  return { der: Buffer.from(cert.rawData), keys, name: o.name };
}

/** An extension from its OID, criticality and DER value (built with packages/crypto/src/pki/der.ts). */
export const rawExtension = (oid: string, critical: boolean, value: Uint8Array): x509.Extension => new x509.Extension(oid, critical, value);

export const check = (input: Partial<ValidationInput> & Pick<ValidationInput, 'leaf' | 'trustAnchors'>): ValidationResult =>
  validateChain({ time: NOW, ...input });

export function expectRefused(r: ValidationResult, reason: string): void {
  expect(r.ok ? 'ok' : `${r.reason}: ${r.detail}`).toMatch(new RegExp(`^${reason}:`));
}

export function expectAccepted(r: ValidationResult): void {
  expect(r.ok ? 'ok' : `${r.reason}: ${r.detail}`).toBe('ok');
}
