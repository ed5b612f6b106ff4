import * as x509 from './x509-lib.js';
import { FleetkeyError } from '@fleetkey/protocol';
import type { Signer } from '../signer/signer.js';
import type { IssuedCertificate } from './device-profile.js';
import { sha256Hex } from './hash.js';
import { signerCrypto } from './signature-algorithm.js';

export type LibraryCertificateParams = Omit<x509.X509CertificateCreateWithKeyParams, 'signingKey' | 'signingAlgorithm'>;

/** Runs @peculiar/x509's generator with signing routed through our Signer. */
export async function createWithLibrary(params: LibraryCertificateParams, signer: Signer): Promise<IssuedCertificate> {
  const { crypto, signingKey, signingAlgorithm } = signerCrypto(signer);
  let cert: x509.X509Certificate;
  try {
    cert = await x509.X509CertificateGenerator.create({ ...params, signingKey, signingAlgorithm }, crypto);
  } catch (e) {
    if (e instanceof FleetkeyError) throw e;
    throw new FleetkeyError('CERT_SIGNING_FAILED', { detail: 'certificate generation failed', cause: e });
  }
  const der = Buffer.from(cert.rawData);
  return { der, serialHex: cert.serialNumber.toLowerCase(), fingerprintSha256: sha256Hex(der) };
}
