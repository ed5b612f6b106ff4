import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { connect, createServer } from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import * as x509 from '../src/pki/x509-lib.js';
import { SoftwareSigner } from '../src/signer/software-signer.js';
import { createIntermediateCa, createIssuerTemplate, createRootCa, issueDeviceCertificate, issueServerCertificate, toPem } from '../src/pki/index.js';
import { deviceRequest, ecKey, makeTestPki, type TestPki } from './support/pki-fixtures.js';
import { opensslVerify, certPem } from './support/pki-openssl.js';
import { codeOf } from './support/codes.js';

const HOUR = 3_600_000;
const validity = (hours: number) => ({ notBefore: new Date(Date.now() - HOUR), notAfter: new Date(Date.now() + hours * HOUR) });

let pki: TestPki;
beforeAll(async () => {
  pki = await makeTestPki();
});

describe('CA certificates', () => {
  it('fail-*: bad pathLen, reversed validity, validity beyond issuer, mismatched issuer signer, bad subject', async () => {
    const signer = new SoftwareSigner(ecKey().privateKey);
    expect(await codeOf(createRootCa({ subject: 'CN=x', signer, validity: validity(1), pathLen: -1 }))).toBe('CERT_PROFILE_INVALID');
    expect(await codeOf(createRootCa({ subject: 'CN=x', signer, validity: { notBefore: new Date(), notAfter: new Date(Date.now() - 1) } }))).toBe('CERT_VALIDITY_INVALID');
    const k = ecKey();
    const base = { subject: 'CN=Sub', publicKey: k.publicKey, issuerCertificate: pki.rootDer, issuerSigner: pki.rootSigner, pathLen: 0, validity: validity(24) };
    expect(await codeOf(createIntermediateCa({ ...base, validity: validity(24 * 365 * 50) }))).toBe('CERT_VALIDITY_INVALID');
    expect(await codeOf(createIntermediateCa({ ...base, issuerSigner: signer }))).toBe('CERT_ISSUER_INVALID');
    expect(await codeOf(createIntermediateCa({ ...base, subject: 'no equals sign' }))).toBe('CERT_PROFILE_INVALID');
  });

  it('root and intermediate carry critical basicConstraints/keyUsage, SKI/AKI; openssl verifies them', async () => {
    const root = new x509.X509Certificate(pki.rootDer);
    const int = new x509.X509Certificate(pki.intermediateDer);
    for (const [cert, pathLen] of [[root, 1], [int, 0]] as const) {
      const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
      expect([bc.critical, bc.ca, bc.pathLength]).toEqual([true, true, pathLen]);
      const ku = cert.getExtension(x509.KeyUsagesExtension)!;
      expect([ku.critical, ku.usages]).toEqual([true, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign]);
    }
    expect(int.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).toBe(root.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId);
    expect(new X509Certificate(pki.rootDer).ca).toBe(true);
    const r = await opensslVerify(pki.intermediateDer, pki.rootDer);
    expect(r.stdout).toContain(': OK');
  });

  it('P-384 root signs with ecdsa-with-SHA384', async () => {
    const signer = new SoftwareSigner(ecKey('P-384').privateKey);
    const root = await createRootCa({ subject: 'CN=Root 384', signer, validity: validity(24) });
    expect(new x509.X509Certificate(root.der).signatureAlgorithm).toMatchObject({ name: 'ECDSA', hash: { name: 'SHA-384' } });
    expect((await opensslVerify(root.der, root.der)).stdout).toContain(': OK');
  });

  it('pathLen is enforced by relying parties: a CA under a pathLen 0 CA is refused by openssl', async () => {
    const k = ecKey();
    const sub = await createIntermediateCa({ subject: 'CN=Rogue Sub', publicKey: k.publicKey, issuerCertificate: pki.intermediateDer, issuerSigner: pki.intermediateSigner, pathLen: 0, validity: validity(48) });
    const template = createIssuerTemplate({ issuerCertificate: sub.der, signer: new SoftwareSigner(k.privateKey), crlUrl: 'http://a/crl', ocspUrl: 'http://a/ocsp' });
    const leaf = await issueDeviceCertificate(template, deviceRequest({ days: 1 }));
    const r = await opensslVerify(leaf.der, pki.rootDer, [pki.intermediateDer, sub.der]);
    expect(r.ok).toBe(false);
    expect(r.stdout + r.stderr).toMatch(/path length/i);
  });
});

describe('TLS server certificate', () => {
  it('fail-*: no names, bad DNS name, bad IP', async () => {
    const base = { publicKey: ecKey().publicKey, issuerCertificate: pki.intermediateDer, issuerSigner: pki.intermediateSigner, validity: validity(24) };
    expect(await codeOf(issueServerCertificate({ ...base, dnsNames: [] }))).toBe('CERT_PROFILE_INVALID');
    expect(await codeOf(issueServerCertificate({ ...base, dnsNames: ['bad name'] }))).toBe('CERT_PROFILE_INVALID');
    expect(await codeOf(issueServerCertificate({ ...base, dnsNames: ['localhost'], ipAddresses: ['300.1.1.1'] }))).toBe('CERT_PROFILE_INVALID');
  });

  it('serves TLS on 127.0.0.1 to a client that trusts only the root (localhost and the IP both match)', async () => {
    const key = ecKey();
    const cert = await issueServerCertificate({
      publicKey: key.publicKey,
      issuerCertificate: pki.intermediateDer,
      issuerSigner: pki.intermediateSigner,
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1', '::1'],
      validity: validity(24),
    });
    const node = new X509Certificate(cert.der);
    expect(node.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(node.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect((await opensslVerify(cert.der, pki.rootDer, [pki.intermediateDer], ['-purpose', 'sslserver'])).stdout).toContain(': OK');

    const server = createServer({ key: key.privateKey.export({ type: 'pkcs8', format: 'pem' }), cert: certPem(cert.der) + certPem(pki.intermediateDer), minVersion: 'TLSv1.3' }, (s) => s.end('hello'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    try {
      for (const servername of ['localhost', undefined]) {
        const socket = connect({ host: '127.0.0.1', port, ca: toPem(pki.rootDer, 'CERTIFICATE'), ...(servername === undefined ? {} : { servername }) });
        await once(socket, 'secureConnect');
        expect(socket.authorized).toBe(true);
        const [data] = (await once(socket, 'data')) as [Buffer];
        expect(data.toString()).toBe('hello');
        socket.destroy();
      }
      // The check can fail: a client trusting another root is refused.
      const other = await makeTestPki();
      const bad = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: toPem(other.rootDer, 'CERTIFICATE') });
      const [err] = (await once(bad, 'error')) as [Error & { code?: string }];
      expect(err.code).toBe('UNABLE_TO_GET_ISSUER_CERT_LOCALLY');
    } finally {
      server.close();
    }
  });
});

