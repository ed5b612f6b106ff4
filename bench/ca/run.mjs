#!/usr/bin/env node
// Fleetkey CA benchmark: issuance fast path vs raw ECDSA signing vs the @peculiar library path;
// SAS token verification vs raw HMAC-SHA256.
//
//   npx tsc -b packages/crypto && taskset -c 0 node bench/ca/run.mjs [--quick] [--json-only]
//
// Everything runs in ONE process on one thread (pin it to one core with taskset for stable
// figures). Each figure is median/min/max over several runs (5, or 3 with --quick). Ratios are
// against baselines measured in the same run, so they stay comparable across machines.
import { createHash, createHmac, generateKeyPairSync, randomBytes, sign, webcrypto } from 'node:crypto';
import os from 'node:os';
import * as pki from '@fleetkey/crypto';
import * as x509 from '../../packages/crypto/dist/pki/x509-lib.js';
import { SoftwareSigner } from '@fleetkey/crypto';

const quick = process.argv.includes('--quick');
const jsonOnly = process.argv.includes('--json-only');
const RUNS = quick ? 3 : 5;
const RUN_MS = quick ? 300 : 1000;
const CRL_ENTRIES = 100_000;
const log = (...a) => {
  if (!jsonOnly) console.error(...a);
};

/** Calls `op` (sync or async) back to back for ~RUN_MS, RUNS times; returns ops/s stats. */
async function throughput(name, op) {
  for (let i = 0; i < 50; i++) await op(i); // warm-up: JIT, pools, caches
  const rates = [];
  for (let r = 0; r < RUNS; r++) {
    let n = 0;
    const start = performance.now();
    let elapsed = 0;
    while ((elapsed = performance.now() - start) < RUN_MS) {
      for (let k = 0; k < 16; k++) await op(n++);
    }
    rates.push((n * 1000) / elapsed);
  }
  const s = stats(rates);
  log(`${name.padEnd(28)} median ${fmt(s.median)}/s  (min ${fmt(s.min)}, max ${fmt(s.max)})`);
  return s;
}

async function duration(name, op) {
  await op(); // warm-up
  const times = [];
  for (let r = 0; r < RUNS; r++) {
    const start = performance.now();
    await op();
    times.push(performance.now() - start);
  }
  const s = stats(times);
  log(`${name.padEnd(28)} median ${s.median.toFixed(1)} ms  (min ${s.min.toFixed(1)}, max ${s.max.toFixed(1)})`);
  return s;
}

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median: round(median), min: round(sorted[0]), max: round(sorted.at(-1)), runs: values.length };
}
const round = (v) => Math.round(v * 10) / 10;
const ratio = (a, b, digits) => Number((a / b).toFixed(digits));
const fmt = (v) => Math.round(v).toLocaleString('en-US');

// ---- setup: a root and an issuing CA, device keys and CSRs -------------------------------
const HOUR = 3_600_000;
const now = Date.now();
const rootSigner = new SoftwareSigner(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey);
const root = await pki.createRootCa({ subject: 'CN=Bench Root', signer: rootSigner, validity: { notBefore: new Date(now - HOUR), notAfter: new Date(now + 87600 * HOUR) } });
const caKeys = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const caSigner = new SoftwareSigner(caKeys.privateKey);
const ca = await pki.createIntermediateCa({
  subject: 'CN=Bench Devices CA',
  publicKey: caKeys.publicKey,
  issuerCertificate: root.der,
  issuerSigner: rootSigner,
  pathLen: 0,
  validity: { notBefore: new Date(now - HOUR), notAfter: new Date(now + 43800 * HOUR) },
});
const template = pki.createIssuerTemplate({
  issuerCertificate: ca.der,
  signer: caSigner,
  crlUrl: 'http://ca.example.com/crl/devices.crl',
  ocspUrl: 'http://ca.example.com/ocsp',
  caIssuersUrl: 'http://ca.example.com/ca/devices.cer',
});

const POOL = 64;
const csrs = [];
for (let i = 0; i < POOL; i++) {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=device-${i}`, keys, signingAlgorithm: alg }, webcrypto);
  csrs.push(Buffer.from(csr.rawData));
}
// "From CSRs already verified": the issuance figures start from verified SPKIs.
const verified = csrs.map((c) => pki.parseAndVerifyCsr(c));
const deviceIds = Array.from({ length: POOL }, () => webcrypto.randomUUID());
const request = (i) => ({
  deviceId: deviceIds[i % POOL],
  spkiDer: verified[i % POOL].spkiDer,
  notBefore: new Date(now),
  notAfter: new Date(now + 720 * HOUR),
  method: 'x509:enrollment-0001',
  kind: 'operational',
  clockSkewMs: 60_000,
});

// Sanity: what we time is a real certificate chaining to the CA.
{
  const c = await pki.issueDeviceCertificate(template, request(0));
  const { X509Certificate } = await import('node:crypto');
  if (!new X509Certificate(c.der).verify(caKeys.publicKey)) throw new Error('fast-path certificate does not verify');
}

log(`node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'}, ${os.cpus().length} logical cores visible; ${RUNS} runs × ${RUN_MS} ms${quick ? ' (--quick)' : ''}`);

// ---- measurements -------------------------------------------------------------------------
// Baseline: one raw P-256 ECDSA signature over a certificate-sized message, nothing else.
const tbsLike = createHash('sha512').update('x').digest().toString('hex').repeat(5).slice(0, 600);
const tbsBuf = Buffer.from(tbsLike);
const rawSign = await throughput('raw P-256 crypto.sign', () => void sign('sha256', tbsBuf, caKeys.privateKey));
const fast = await throughput('fast path certificates', (i) => pki.issueDeviceCertificate(template, request(i)));
const library = await throughput('library path certificates', (i) => pki.issueDeviceCertificateWithLibrary(template, request(i)));

// @peculiar/x509's own generator with WebCrypto signing, as an application would use it out of the box.
const webKeys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
const caName = new x509.X509Certificate(ca.der).subjectName;
const x509Generator = await throughput('x509 generator (WebCrypto)', (i) =>
  x509.X509CertificateGenerator.create({
    serialNumber: pki.randomSerial().toString('hex'),
    subject: `CN=${deviceIds[i % POOL]}`,
    issuer: caName,
    notBefore: new Date(now),
    notAfter: new Date(now + 720 * HOUR),
    publicKey: verified[i % POOL].spkiDer,
    signingKey: webKeys.privateKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(['1.3.6.1.5.5.7.3.2']),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `urn:uuid:${deviceIds[i % POOL]}` }]),
      new x509.CRLDistributionPointsExtension(['http://ca.example.com/crl/devices.crl']),
      new x509.AuthorityInfoAccessExtension({ ocsp: ['http://ca.example.com/ocsp'] }),
    ],
  }),
);
const csrVerify = await throughput('CSR parse + verify', (i) => void pki.parseAndVerifyCsr(csrs[i % POOL]));

// SAS tokens (symmetric-key devices): full verification (strict parse, resource, HMAC in constant
// time, expiry, lifetime; and, for a group enrollment, the per-device key derivation first) next
// to one raw HMAC-SHA256 over the same signed string.
const groupKey = randomBytes(32);
const sasResource = `mqtt/${deviceIds[0]}`;
const deviceKey = pki.deriveDeviceKey(groupKey, deviceIds[0]);
const sasToken = pki.createSasToken({ resource: sasResource, expiresAt: new Date(Date.now() + 30 * 60_000), key: deviceKey });
const signedString = `${sasResource}\n${Math.floor(Date.now() / 1000) + 1800}`;
{
  const v = await pki.verifySasToken(sasToken, { expectedResource: sasResource, key: deviceKey, maxLifetimeSeconds: 3600 });
  if (!v.ok) throw new Error(`SAS sanity check failed: ${v.reason}`);
}
const rawHmac = await throughput('raw HMAC-SHA256', () => void createHmac('sha256', deviceKey).update(signedString).digest());
const sasVerify = await throughput('SAS verify (device key)', () => pki.verifySasToken(sasToken, { expectedResource: sasResource, key: deviceKey, maxLifetimeSeconds: 3600 }));
const sasGroupVerify = await throughput('SAS verify (group: derive)', () => pki.verifySasToken(sasToken, { expectedResource: sasResource, key: pki.deriveDeviceKey(groupKey, deviceIds[0]), maxLifetimeSeconds: 3600 }));

const crlEntries = Array.from({ length: CRL_ENTRIES }, (_, i) => ({
  serialHex: pki.randomSerial().toString('hex'),
  revokedAt: new Date(now - i * 1000),
  reason: i % 4 === 0 ? 'keyCompromise' : 'superseded',
}));
let crlBytes = 0;
const crl = await duration(`CRL with ${CRL_ENTRIES.toLocaleString('en-US')} entries`, async () => {
  const der = await pki.buildCrl({ issuerCertificate: ca.der, signer: caSigner, thisUpdate: new Date(now), nextUpdate: new Date(now + 24 * HOUR), crlNumber: 42n, entries: crlEntries });
  crlBytes = der.length;
});

const result = {
  node: process.version,
  cpu: os.cpus()[0]?.model ?? null,
  quick,
  runs: RUNS,
  runMs: RUN_MS,
  perSecond: {
    rawP256Sign: rawSign,
    fastPathCertificates: fast,
    libraryPathCertificates: library,
    x509GeneratorCertificates: x509Generator,
    csrVerifications: csrVerify,
    rawHmacSha256: rawHmac,
    sasVerifications: sasVerify,
    sasGroupVerifications: sasGroupVerify,
  },
  crl100k: { ms: crl, entries: CRL_ENTRIES, bytes: crlBytes },
  ratios: {
    fastOverRawSign: ratio(fast.median, rawSign.median, 2),
    fastOverLibrary: ratio(fast.median, library.median, 1),
    fastOverX509Generator: ratio(fast.median, x509Generator.median, 1),
    csrVerifyOverRawSign: ratio(csrVerify.median, rawSign.median, 3),
    sasVerifyOverRawHmac: ratio(sasVerify.median, rawHmac.median, 2),
    sasGroupVerifyOverRawHmac: ratio(sasGroupVerify.median, rawHmac.median, 2),
  },
  target: { fastPathPerSecond: 5000, met: fast.median >= 5000 },
};

if (!jsonOnly) {
  const rows = [
    ['raw P-256 sign (baseline)', rawSign.median, '1.00 × sign'],
    ['fast path certs', fast.median, `${result.ratios.fastOverRawSign} × sign, ${result.ratios.fastOverLibrary} × library`],
    ['library path certs', library.median, `${ratio(library.median, rawSign.median, 3)} × sign`],
    ['x509 generator certs', x509Generator.median, `${ratio(x509Generator.median, rawSign.median, 3)} × sign, fast = ${result.ratios.fastOverX509Generator} × this`],
    ['CSR verifications', csrVerify.median, `${result.ratios.csrVerifyOverRawSign} × sign`],
    ['raw HMAC-SHA256 (baseline)', rawHmac.median, '1.00 × HMAC'],
    ['SAS token verifications', sasVerify.median, `${result.ratios.sasVerifyOverRawHmac} × HMAC`],
    ['SAS verifications, group key derived', sasGroupVerify.median, `${result.ratios.sasGroupVerifyOverRawHmac} × HMAC`],
  ];
  console.error('\n| measure | median /s | ratio |\n|---|---:|---|');
  for (const [name, v, ratio] of rows) console.error(`| ${name} | ${fmt(v)} | ${ratio} |`);
  console.error(`| CRL ${CRL_ENTRIES.toLocaleString('en-US')} entries | ${crl.median.toFixed(0)} ms | ${(crlBytes / 1e6).toFixed(1)} MB |\n`);
}
console.log(JSON.stringify(result, null, 2));
