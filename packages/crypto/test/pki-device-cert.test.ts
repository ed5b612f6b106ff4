import { X509Certificate, createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import * as x509 from '../src/pki/x509-lib.js';
import { SoftwareSigner } from '../src/signer/software-signer.js';
import {
  MAX_CLOCK_SKEW_MS,
  NO_WELL_DEFINED_EXPIRATION,
  OID_FLEETKEY_ISSUANCE_METHOD,
  OID_FLEETKEY_ISSUANCE_METHOD_LEGACY,
  issuanceMethodOf,
  createIssuerTemplate,
  issueDeviceCertificate,
  issueDeviceCertificateWithLibrary,
  type DeviceCertificateRequest,
  type IssuedCertificate,
} from '../src/pki/index.js';
import { bitString, children, decodeOid, readExactly, seq, tlv, utf8String } from '../src/pki/der.js';
import { extension } from '../src/pki/issuer-template.js';
import { validateChain } from '../src/x509/validate/index.js';
import { deviceRequest, ecKey, makeTestPki, spkiOf, type TestPki } from './support/pki-fixtures.js';
import { opensslVerify, opensslVerifyAll } from './support/pki-openssl.js';
import { codeOf } from './support/codes.js';

const PATHS = {
  fast: issueDeviceCertificate,
  library: issueDeviceCertificateWithLibrary,
} as const;

/** Everything a relying party sees of a certificate, apart from serial, validity, key and signature. */
function profileOf(der: Buffer) {
  const node = new X509Certificate(der);
  const lib = new x509.X509Certificate(der);
  return {
    node: { subject: node.subject, issuer: node.issuer, san: node.subjectAltName, eku: node.keyUsage, ca: node.ca, infoAccess: node.infoAccess },
    subjectDer: Buffer.from(lib.subjectName.toArrayBuffer()).toString('hex'),
    signatureAlgorithm: lib.signatureAlgorithm,
    extensions: extensionsOf(der),
  };
}

/**
 * Extensions read with our DER reader: asn1js (under @peculiar/x509) renders OID arcs above
 * 2^53, like the legacy 2.25.<UUID> arc, as "{hex}", so the private extension is looked up here.
 */
function extensionsOf(der: Buffer): Array<{ oid: string; critical: boolean; value: string }> {
  const tbs = children(readExactly(der, 0x30))[0]!;
  const exts = children(tbs).find((f) => f.tag === 0xa3)!;
  return children(children(exts)[0]!).map((e) => {
    const parts = children(e);
    return { oid: decodeOid(parts[0]!.value), critical: parts.length === 3, value: parts[parts.length - 1]!.value.toString('hex') };
  });
}

const spkiBits = (spki: Buffer): Buffer => {
  const bits = children(readExactly(spki, 0x30))[1]!;
  return bits.value.subarray(1);
};

let pki: TestPki;
let pki384: TestPki;
const issued: IssuedCertificate[] = [];
const issued384: IssuedCertificate[] = [];

beforeAll(async () => {
  pki = await makeTestPki('P-256', 'P-256');
  pki384 = await makeTestPki('P-384', 'P-384');
});

describe('device certificate refusals (both paths)', () => {
  for (const [name, issue] of Object.entries(PATHS)) {
    it(`${name}: fail-profile on a bad device id, method, kind or key`, async () => {
      const bad: Array<Partial<DeviceCertificateRequest>> = [
        { deviceId: 'C2C38155-B0D2-48B6-82FD-22FE3B316224' }, // upper case
        { deviceId: 'c2c38155-b0d2-18b6-82fd-22fe3b316224' }, // version 1
        { deviceId: 'c2c38155-b0d2-48b6-82fd-22fe3b316224,CN=admin' },
        { method: '' },
        { method: 'x509:\u0000' },
        { method: 'a'.repeat(200) },
        { kind: 'root' as never },
        { spkiDer: Buffer.from('3000', 'hex') },
      ];
      for (const override of bad) {
        expect(await codeOf(issue(pki.template, { ...deviceRequest(), ...override }))).toBe('CERT_PROFILE_INVALID');
      }
    });

    it(`${name}: fail-validity on reversed dates, skew > 5 min, or notAfter beyond the issuer`, async () => {
      const req = deviceRequest();
      expect(await codeOf(issue(pki.template, { ...req, notAfter: req.notBefore }))).toBe('CERT_VALIDITY_INVALID');
      expect(await codeOf(issue(pki.template, { ...req, clockSkewMs: MAX_CLOCK_SKEW_MS + 1 }))).toBe('CERT_VALIDITY_INVALID');
      expect(await codeOf(issue(pki.template, { ...req, clockSkewMs: -1 }))).toBe('CERT_VALIDITY_INVALID');
      expect(await codeOf(issue(pki.template, deviceRequest({ days: 20 * 365 })))).toBe('CERT_VALIDITY_INVALID');
    });
  }

  it('fail-issuer: a signer whose key is not the issuer certificate key', () => {
    const other = new SoftwareSigner(ecKey().privateKey);
    expect(() => createIssuerTemplate({ issuerCertificate: pki.intermediateDer, signer: other, crlUrl: 'http://a/crl', ocspUrl: 'http://a/ocsp' })).toThrow(
      expect.objectContaining({ code: 'CERT_ISSUER_INVALID' }),
    );
  });

  it('fail-issuer: an issuer certificate that is not a CA', async () => {
    const leafKey = ecKey();
    const leaf = await issueDeviceCertificate(pki.template, deviceRequest({ spkiDer: spkiOf(leafKey.publicKey) }));
    issued.push(leaf);
    expect(() =>
      createIssuerTemplate({ issuerCertificate: leaf.der, signer: new SoftwareSigner(leafKey.privateKey), crlUrl: 'http://a/crl', ocspUrl: 'http://a/ocsp' }),
    ).toThrow(expect.objectContaining({ code: 'CERT_ISSUER_INVALID' }));
  });

  it('fail-profile: non-http or non-ASCII distribution URLs', () => {
    for (const crlUrl of ['ldap://x/crl', 'not a url', 'http://exämple.com/crl']) {
      expect(() => createIssuerTemplate({ issuerCertificate: pki.intermediateDer, signer: pki.intermediateSigner, crlUrl, ocspUrl: 'http://a/ocsp' })).toThrow(
        expect.objectContaining({ code: 'CERT_PROFILE_INVALID' }),
      );
    }
  });
});

describe('device certificate profile', () => {
  it('fast and library paths give the same profile (P-256 and P-384 issuers, both kinds)', async () => {
    for (const [p, sink] of [[pki, issued], [pki384, issued384]] as const) {
      for (const kind of ['operational', 'idevid'] as const) {
        const req = deviceRequest({ kind, method: kind === 'idevid' ? 'manufacturing:station-7' : 'x509:enr-42' });
        const fast = await issueDeviceCertificate(p.template, req);
        const lib = await issueDeviceCertificateWithLibrary(p.template, req);
        sink.push(fast, lib);
        expect(profileOf(fast.der)).toEqual(profileOf(lib.der));
        expect(fast.serialHex).not.toBe(lib.serialHex);
        // Same inputs and key: the TBSCertificates differ only in the serial number.
        const tbsF = children(readExactly(fast.der, 0x30))[0]!.raw;
        const tbsL = children(readExactly(lib.der, 0x30))[0]!.raw;
        expect(tbsF.length).toBe(tbsL.length);
        expect(tbsF.toString('hex').replace(fast.serialHex, '')).toBe(tbsL.toString('hex').replace(lib.serialHex, ''));
      }
    }
  });

  for (const [name, issue] of Object.entries(PATHS)) {
    it(`${name}: carries our profile, whatever the request`, async () => {
      const key = ecKey();
      const req = deviceRequest({ spkiDer: spkiOf(key.publicKey), clockSkewMs: 120_000, method: 'x509:enr-7' });
      const cert = await issue(pki.template, req);
      issued.push(cert);
      const node = new X509Certificate(cert.der);
      const lib = new x509.X509Certificate(cert.der);
      const ext = <T extends x509.Extension>(type: new (...a: never[]) => T): T => lib.getExtension(type as never) as T;

      expect(node.subject).toBe(`CN=${req.deviceId}`);
      expect(node.subjectAltName).toBe(`URI:urn:uuid:${req.deviceId}`);
      expect(node.ca).toBe(false);
      expect(node.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
      expect(node.publicKey.export({ type: 'spki', format: 'der' }).equals(req.spkiDer)).toBe(true);
      expect(node.checkIssued(new X509Certificate(pki.intermediateDer))).toBe(true);
      expect(node.verify(new X509Certificate(pki.intermediateDer).publicKey)).toBe(true);
      expect(node.infoAccess).toBe('OCSP - URI:http://127.0.0.1:8080/ocsp\nCA Issuers - URI:http://127.0.0.1:8080/ca/devices.cer');
      expect(cert.fingerprintSha256).toBe(createHash('sha256').update(cert.der).digest('hex'));

      // Validity: notBefore backdated by the skew, whole seconds.
      expect(lib.notBefore.getTime()).toBe(Math.floor((req.notBefore.getTime() - 120_000) / 1000) * 1000);
      expect(lib.notAfter.getTime()).toBe(Math.floor(req.notAfter.getTime() / 1000) * 1000);

      // Serial: 16 octets, positive, matches serialHex (RFC 5280 §4.1.2.2).
      expect(lib.serialNumber.toLowerCase()).toBe(cert.serialHex);
      expect(cert.serialHex).toMatch(/^[4-7][0-9a-f]{31}$/);

      const bc = ext(x509.BasicConstraintsExtension);
      expect([bc.critical, bc.ca, bc.pathLength]).toEqual([true, false, undefined]);
      const ku = ext(x509.KeyUsagesExtension);
      expect([ku.critical, ku.usages]).toEqual([true, x509.KeyUsageFlags.digitalSignature]);
      expect(ext(x509.ExtendedKeyUsageExtension).critical).toBe(false);
      const ski = ext(x509.SubjectKeyIdentifierExtension);
      expect(ski.keyId).toBe(createHash('sha1').update(spkiBits(req.spkiDer)).digest('hex'));
      const issuerSki = new x509.X509Certificate(pki.intermediateDer).getExtension(x509.SubjectKeyIdentifierExtension)!;
      expect(ext(x509.AuthorityKeyIdentifierExtension).keyId).toBe(issuerSki.keyId);
      const cdp = ext(x509.CRLDistributionPointsExtension);
      expect(cdp.distributionPoints[0]?.distributionPoint?.fullName?.[0]?.uniformResourceIdentifier).toBe('http://127.0.0.1:8080/crl/devices.crl');
      const exts = extensionsOf(cert.der);
      const method = exts.find((e) => e.oid === OID_FLEETKEY_ISSUANCE_METHOD)!;
      expect(method.critical).toBe(false);
      expect(method.value).toBe(Buffer.concat([Buffer.from([0x0c, 10]), Buffer.from('x509:enr-7')]).toString('hex'));
      expect(exts.map((e) => e.oid)).toEqual(['2.5.29.19', '2.5.29.15', '2.5.29.37', '2.5.29.35', '2.5.29.31', '1.3.6.1.5.5.7.1.1', '2.5.29.14', '2.5.29.17', OID_FLEETKEY_ISSUANCE_METHOD]);
    });

    it(`${name}: an IDevID adds serialNumber = device id to the subject`, async () => {
      const req = deviceRequest({ kind: 'idevid', method: 'manufacturing:line-1' });
      const cert = await issue(pki.template, req);
      issued.push(cert);
      expect(new X509Certificate(cert.der).subject).toBe(`CN=${req.deviceId}\nserialNumber=${req.deviceId}`);
    });
  }

  it('openssl verifies a P-384 chain issued certificate as an SSL client', async () => {
    const cert = await issueDeviceCertificate(pki384.template, deviceRequest());
    issued384.push(cert);
    expect(new x509.X509Certificate(cert.der).signatureAlgorithm).toMatchObject({ name: 'ECDSA', hash: { name: 'SHA-384' } });
    const r = await opensslVerify(cert.der, pki384.rootDer, [pki384.intermediateDer], ['-purpose', 'sslclient']);
    expect(r.stdout + r.stderr).toContain(': OK');
  });

  it('openssl refuses a certificate against the wrong root (the check can fail)', async () => {
    const cert = await issueDeviceCertificate(pki.template, deviceRequest());
    issued.push(cert);
    const r = await opensslVerify(cert.der, pki384.rootDer, [pki.intermediateDer]);
    expect(r.ok).toBe(false);
  });

  it('serials are unique and random across 200 issuances', async () => {
    const certs = await Promise.all(Array.from({ length: 200 }, () => issueDeviceCertificate(pki.template, deviceRequest())));
    issued.push(...certs);
    expect(new Set(certs.map((c) => c.serialHex)).size).toBe(200);
    expect(new Set(certs.map((c) => c.serialHex.slice(0, 8))).size).toBeGreaterThan(190);
  });

  it('every certificate issued in this file is parsed by Node and verified by openssl -x509_strict', async () => {
    expect(issued.length).toBeGreaterThan(200);
    const r = await opensslVerifyAll(issued.map((c) => c.der), pki.rootDer, [pki.intermediateDer], ['-purpose', 'sslclient']);
    expect(r.okCount).toBe(issued.length);
    const r384 = await opensslVerifyAll(issued384.map((c) => c.der), pki384.rootDer, [pki384.intermediateDer], ['-purpose', 'sslclient']);
    expect(r384.okCount).toBe(issued384.length);
  });
});

describe('interop of the device profile (issue 10 items 4, 5)', () => {
  const arcsOf = (dotted: string): bigint[] => dotted.split('.').map((a) => BigInt(a));

  it('fail: a device certificate carries no OID with an arc of 2^28 or more (pyca/cryptography reads 4 base-128 octets per arc, Go 31 bits)', async () => {
    for (const [name, issue] of Object.entries(PATHS)) {
      const cert = await issue(pki.template, deviceRequest());
      issued.push(cert);
      const oids = extensionsOf(cert.der).map((e) => e.oid);
      expect(oids, name).toContain(OID_FLEETKEY_ISSUANCE_METHOD);
      for (const o of oids) for (const arc of arcsOf(o)) expect(arc < 2n ** 28n, `${name}: ${o}`).toBe(true);
    }
  });

  it('provenance is read under the current OID and under the legacy 2.25 OID of certificates already issued', async () => {
    const req = deviceRequest({ method: 'x509:enr-legacy' });
    const cert = await issueDeviceCertificate(pki.template, req);
    issued.push(cert);
    expect(issuanceMethodOf(cert.der)).toBe('x509:enr-legacy');
    // The same certificate as the previous profile wrote it: legacy extension OID, re-signed by the issuer.
    const [tbs, alg] = children(readExactly(cert.der, 0x30));
    const fields = children(tbs!).map((f) => f.raw);
    const extsAt = fields.findIndex((f) => f[0] === 0xa3);
    const exts = children(children(readExactly(fields[extsAt]!, 0xa3))[0]!).map((e) => e.raw);
    exts[exts.length - 1] = extension(OID_FLEETKEY_ISSUANCE_METHOD_LEGACY, false, utf8String('x509:enr-legacy'));
    fields[extsAt] = tlv(0xa3, seq(...exts));
    const legacyTbs = seq(...fields);
    const legacy = seq(legacyTbs, alg!.raw, bitString(await pki.intermediateSigner.sign(legacyTbs)));
    expect(extensionsOf(legacy).map((e) => e.oid)).toContain(OID_FLEETKEY_ISSUANCE_METHOD_LEGACY);
    expect((await opensslVerify(legacy, pki.rootDer, [pki.intermediateDer])).ok).toBe(true);
    expect(issuanceMethodOf(legacy)).toBe('x509:enr-legacy');
    // No provenance: a CA certificate, garbage.
    expect(issuanceMethodOf(pki.intermediateDer)).toBeNull();
    expect(issuanceMethodOf(Buffer.from('3003020101', 'hex'))).toBeNull();
  });

  for (const [name, issue] of Object.entries(PATHS)) {
    it(`${name}: an IDevID may have no well-defined expiration (99991231235959Z, GeneralizedTime) past its issuer; nothing else may outlive the issuer`, async () => {
      const idevid = await issue(pki.template, { ...deviceRequest({ kind: 'idevid' }), notAfter: NO_WELL_DEFINED_EXPIRATION });
      issued.push(idevid);
      expect(idevid.der.includes(Buffer.concat([Buffer.from([0x18, 0x0f]), Buffer.from('99991231235959Z', 'latin1')]))).toBe(true);
      expect(new X509Certificate(idevid.der).validTo).toBe('Dec 31 23:59:59 9999 GMT');
      expect((await opensslVerify(idevid.der, pki.rootDer, [pki.intermediateDer])).ok).toBe(true);
      // Our own validator (the one X.509 provisioning uses) accepts it, and its chain still bounds it.
      const check = (time: Date) => validateChain({ leaf: idevid.der, intermediates: [pki.intermediateDer], trustAnchors: [pki.rootDer], time, requiredKeyUsage: ['digitalSignature'] });
      expect(check(new Date()).ok).toBe(true);
      const late = check(new Date(Date.now() + 6 * 365 * 86_400_000)); // the test intermediate lives 5 years
      expect(late.ok ? 'ok' : late.reason).toBe('expired');
      expect(await codeOf(issue(pki.template, { ...deviceRequest(), notAfter: NO_WELL_DEFINED_EXPIRATION }))).toBe('CERT_VALIDITY_INVALID');
      expect(await codeOf(issue(pki.template, deviceRequest({ kind: 'idevid', days: 20 * 365 })))).toBe('CERT_VALIDITY_INVALID');
    });
  }
});
