import { readFile } from 'node:fs/promises';
import { webcrypto } from 'node:crypto';
import * as x509 from '../../src/pki/x509-lib.js';
import { openssl, tempDir } from './pki-openssl.js';

export interface OpensslCsr {
  readonly pem: string;
  readonly keyPem: string;
}

/** `openssl req -new -newkey ...`: the CSRs devices built with OpenSSL send. */
export async function opensslCsr(newkey: readonly string[], extra: readonly string[] = []): Promise<OpensslCsr> {
  const t = await tempDir();
  try {
    const r = await openssl(['req', '-new', ...newkey, '-nodes', '-keyout', `${t.dir}/k.pem`, '-subj', '/CN=device-from-openssl/O=Acme', ...extra, '-out', `${t.dir}/r.pem`]);
    if (!r.ok) throw new Error(`openssl req failed: ${r.stderr}`);
    return { pem: await readFile(`${t.dir}/r.pem`, 'utf8'), keyPem: await readFile(`${t.dir}/k.pem`, 'utf8') };
  } finally {
    await t.dispose();
  }
}

export const EC_P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
export const EC_P384 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'];
export const EC_P521 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521'];
export const EC_K256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp256k1'];
export const ED25519 = ['-newkey', 'ed25519'];
export const rsa = (bits: number): string[] => ['-newkey', `rsa:${bits}`];

/** A CSR made by @peculiar/x509 over WebCrypto, the way a browser or a Node device would. */
export async function peculiarCsr(namedCurve: 'P-256' | 'P-384'): Promise<{ der: Buffer; spki: Buffer }> {
  const hash = namedCurve === 'P-256' ? 'SHA-256' : 'SHA-384';
  const alg = { name: 'ECDSA', namedCurve, hash };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    { name: 'CN=device-from-peculiar', keys: keys as never, signingAlgorithm: alg },
    webcrypto as never,
  );
  return { der: Buffer.from(csr.rawData), spki: Buffer.from(await webcrypto.subtle.exportKey('spki', keys.publicKey)) };
}
