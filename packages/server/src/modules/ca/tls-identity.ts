import { generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { issueServerCertificate, readEncryptedKeyFile, toPem, writeEncryptedKeyFile } from '@fleetkey/crypto';
import type { Authorities } from './authorities.js';

const LIFETIME_MS = 90 * 86_400_000;
const KEY_LABEL = 'fleetkey-tls-server';

export interface TlsIdentity {
  readonly keyPem: string;
  readonly certPem: string;
  /** Server certificate + issuing CA: what a TLS client needs besides the root. */
  readonly chainPem: string;
}

/**
 * The TLS identity of Fleetkey's own endpoints, issued by our issuing CA (serverAuth; SAN
 * localhost, loopback and configured names). Re-issued at start when a third of its life remains
 * or a name is missing. Its key is a file key even with a PKCS#11 CA keystore: Node's TLS needs
 * the key in process.
 */
export async function loadTlsIdentity(dir: string, masterKey: Buffer, authorities: Authorities, dnsNames: readonly string[], now: number): Promise<TlsIdentity> {
  const keyFile = join(dir, 'tls-server.key');
  const certFile = join(dir, 'tls-server.crt');
  const names = ['localhost', ...dnsNames];
  const issuer = authorities.active('issuing');
  if (existsSync(keyFile) && existsSync(certFile)) {
    const certPem = readFileSync(certFile, 'utf8');
    const cert = new X509Certificate(certPem);
    const left = Date.parse(cert.validTo) - now;
    const san = cert.subjectAltName ?? '';
    if (left > LIFETIME_MS / 3 && names.every((n) => san.includes(`DNS:${n}`)) && cert.checkIssued(issuer.certificate)) {
      const key = await readEncryptedKeyFile(keyFile, masterKey, KEY_LABEL);
      return identity(key, certPem, issuer.row.certificate_pem);
    }
  }
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const der = privateKey.export({ type: 'pkcs8', format: 'der' });
  try {
    await writeEncryptedKeyFile(keyFile, der, masterKey, KEY_LABEL, { overwrite: true });
  } finally {
    der.fill(0);
  }
  const issued = await issueServerCertificate({
    publicKey: privateKey,
    issuerCertificate: issuer.certificate,
    issuerSigner: issuer.signer!,
    dnsNames: names,
    ipAddresses: ['127.0.0.1', '::1'],
    validity: { notBefore: new Date(now - 60_000), notAfter: new Date(Math.min(now + LIFETIME_MS, issuer.row.not_after)) },
  });
  const certPem = toPem(issued.der, 'CERTIFICATE');
  await writeFile(certFile, certPem, { mode: 0o644 });
  return identity(privateKey, certPem, issuer.row.certificate_pem);
}

function identity(key: KeyObject, certPem: string, issuerPem: string): TlsIdentity {
  return { keyPem: key.export({ type: 'pkcs8', format: 'pem' }) as string, certPem, chainPem: certPem + issuerPem };
}
