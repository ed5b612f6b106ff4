/**
 * Focused path-validation cases on certificates minted in-test with @peculiar/x509 (real
 * signatures, real DER), refusals first. Each refusal asserts its reason code, so a validator
 * that refused for the wrong reason would fail here.
 */
// tsyringe (inside @peculiar/x509) needs the Reflect metadata API before it loads.
import 'reflect-metadata';
import { AsnConvert } from '@peculiar/asn1-schema';
import { GeneralName, GeneralSubtree, GeneralSubtrees, NameConstraints } from '@peculiar/asn1-x509';
import * as x509 from '@peculiar/x509';
import { execFileSync, spawnSync } from 'node:child_process';
import { webcrypto, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { validateChain } from '../src/x509/validate/index.js';
import { seq, tlv } from '../src/pki/der.js';
import { check, CLIENT_AUTH, DAY, expectRefused, make, newKeys, NOW, SERVER_AUTH, rawExtension, type CryptoKeyPair, type Made } from './support/x509-fixtures.js';

let root: Made;
let inter: Made;
let leaf: Made;

beforeAll(async () => {
  root = await make({ name: 'Fleet Root', ca: true });
  inter = await make({ name: 'Fleet Issuing', ca: true, issuer: root, pathLen: 0 });
  leaf = await make({ name: 'device-1', issuer: inter, dns: ['device-1.fleet.example'], ips: ['10.0.0.7'], eku: [CLIENT_AUTH] });
});

describe('path validator: refusals', () => {
  test('fail-expired-leaf', async () => {
    const old = await make({ name: 'old', issuer: inter, notBefore: new Date(NOW.getTime() - 90 * DAY), notAfter: new Date(NOW.getTime() - DAY) });
    expectRefused(check({ leaf: old.der, intermediates: [inter.der], trustAnchors: [root.der] }), 'expired');
  });

  test('fail-not-yet-valid-intermediate', async () => {
    const future = await make({ name: 'Fleet Issuing', ca: true, issuer: root, keys: inter.keys, notBefore: new Date(NOW.getTime() + DAY) });
    expectRefused(check({ leaf: leaf.der, intermediates: [future.der], trustAnchors: [root.der] }), 'not_yet_valid');
  });

  test('fail-expired-anchor', async () => {
    const oldRoot = await make({ name: 'Fleet Root', ca: true, keys: root.keys, notAfter: new Date(NOW.getTime() - DAY), notBefore: new Date(0) });
    expectRefused(check({ leaf: leaf.der, intermediates: [inter.der], trustAnchors: [oldRoot.der] }), 'expired');
  });

  test('fail-wrong-anchor', async () => {
    const other = await make({ name: 'Other Root', ca: true });
    expectRefused(check({ leaf: leaf.der, intermediates: [inter.der], trustAnchors: [other.der] }), 'untrusted');
  });

  test('fail-missing-intermediate', () => {
    expectRefused(check({ leaf: leaf.der, trustAnchors: [root.der] }), 'untrusted');
  });

  test('fail-bad-signature (right name and AKI, wrong key)', async () => {
    const rootSki = (await x509.SubjectKeyIdentifierExtension.create(root.keys.publicKey)).keyId;
    const forger = await make({ name: 'Fleet Root', ca: true });
    const forged = await make({ name: 'forged', issuer: forger, akiOverride: rootSki });
    expectRefused(check({ leaf: forged.der, trustAnchors: [root.der] }), 'bad_signature');
  });

  test('fail-pathlen-exceeded', async () => {
    const sub = await make({ name: 'Sub CA', ca: true, issuer: inter });
    const deep = await make({ name: 'deep', issuer: sub });
    expectRefused(check({ leaf: deep.der, intermediates: [inter.der, sub.der], trustAnchors: [root.der] }), 'path_len_exceeded');
  });

  test('fail-max-depth', () => {
    expectRefused(check({ leaf: leaf.der, intermediates: [inter.der], trustAnchors: [root.der], maxDepth: 0 }), 'max_depth_exceeded');
  });

  test('fail-non-ca-issuer (cA false)', async () => {
    const notCa = await make({ name: 'Not A CA', issuer: root, ca: false });
    const child = await make({ name: 'child', issuer: notCa });
    expectRefused(check({ leaf: child.der, intermediates: [notCa.der], trustAnchors: [root.der] }), 'not_a_ca');
  });

  test('fail-issuer-without-basic-constraints', async () => {
    const noBc = await make({ name: 'No BC', issuer: root, noBasicConstraints: true, keyUsage: x509.KeyUsageFlags.digitalSignature });
    const child = await make({ name: 'child', issuer: noBc });
    expectRefused(check({ leaf: child.der, intermediates: [noBc.der], trustAnchors: [root.der] }), 'not_a_ca');
  });

  test('fail-eku-missing-on-leaf', () => {
    expectRefused(check({ leaf: leaf.der, intermediates: [inter.der], trustAnchors: [root.der], requiredEku: [SERVER_AUTH] }), 'eku');
  });

  test('fail-eku-on-intermediate-excludes-purpose', async () => {
    const serverOnly = await make({ name: 'Server CA', ca: true, issuer: root, eku: [SERVER_AUTH] });
    const child = await make({ name: 'child', issuer: serverOnly });
    expectRefused(check({ leaf: child.der, intermediates: [serverOnly.der], trustAnchors: [root.der], requiredEku: [CLIENT_AUTH] }), 'eku');
  });

  test('fail-key-usage', () => {
    expectRefused(check({ leaf: leaf.der, intermediates: [inter.der], trustAnchors: [root.der], requiredKeyUsage: ['keyEncipherment'] }), 'key_usage');
  });

  test('fail-peer-name (dns and ip)', () => {
    const base = { leaf: leaf.der, intermediates: [inter.der], trustAnchors: [root.der] };
    expectRefused(check({ ...base, peerName: { kind: 'dns', value: 'device-2.fleet.example' } }), 'peer_name_mismatch');
    expectRefused(check({ ...base, peerName: { kind: 'ip', value: '10.0.0.8' } }), 'peer_name_mismatch');
  });

  test('fail-name-constraints (permitted dNSName subtree)', async () => {
    const nc = new NameConstraints({ permittedSubtrees: new GeneralSubtrees([new GeneralSubtree({ base: new GeneralName({ dNSName: 'fleet.example' }) })]) });
    const ncExt = new x509.Extension('2.5.29.30', true, AsnConvert.serialize(nc));
    const ncRoot = await make({ name: 'NC Root', ca: true, extra: [ncExt] });
    const inside = await make({ name: 'inside', issuer: ncRoot, dns: ['a.fleet.example'] });
    const outside = await make({ name: 'outside', issuer: ncRoot, dns: ['a.fleet.example', 'evil.example'] });
    expect(check({ leaf: inside.der, trustAnchors: [ncRoot.der] }).ok).toBe(true);
    expectRefused(check({ leaf: outside.der, trustAnchors: [ncRoot.der] }), 'name_constraints');
  });

  test('fail-unknown-critical-extension', async () => {
    const odd = await make({ name: 'odd', issuer: inter, extra: [new x509.Extension('1.3.6.1.4.1.55738.666.1', true, new Uint8Array([0x05, 0x00]))] });
    expectRefused(check({ leaf: odd.der, intermediates: [inter.der], trustAnchors: [root.der] }), 'unknown_critical_extension');
  });

  test('fail-duplicate-extension', async () => {
    const dup = await make({ name: 'dup', issuer: inter, extra: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'x.fleet.example' }])], dns: ['y.fleet.example'] });
    expectRefused(check({ leaf: dup.der, intermediates: [inter.der], trustAnchors: [root.der] }), 'duplicate_extension');
  });

  test('fail-sha1-signature', async () => {
    const rsa = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-1' };
    const rsaKeys = (await webcrypto.subtle.generateKey(rsa, true, ['sign', 'verify'])) as CryptoKeyPair;
    const rsaRoot = await make({ name: 'RSA Root', ca: true, keys: rsaKeys, signingAlgorithm: rsa });
    const child = await make({ name: 'sha1-child', issuer: rsaRoot, signingAlgorithm: rsa });
    expectRefused(check({ leaf: child.der, trustAnchors: [rsaRoot.der] }), 'unsupported_algorithm');
  });

  describe('strict general names (RFC 5280 §4.2.1.6, §4.2.1.10)', () => {
    const san = (critical: boolean, ...names: Buffer[]) => rawExtension('2.5.29.17', critical, seq(...names));
    const refusedLeaf = async (o: { subject?: string; extra: x509.Extension[] }) => {
      const bad = await make({ name: 'odd', issuer: inter, ...o });
      return check({ leaf: bad.der, intermediates: [inter.der], trustAnchors: [root.der] });
    };

    test('fail: an iPAddress subjectAltName of 5 octets is refused, not matched as garbage', async () => {
      expectRefused(await refusedLeaf({ extra: [san(false, tlv(0x87, Buffer.from([10, 0, 0, 7, 0])))] }), 'bad_extension');
      expectRefused(await refusedLeaf({ extra: [san(false, tlv(0x87, Buffer.alloc(8)))] }), 'bad_extension');
    });

    test('fail: dNSName, rfc822Name and URI outside IA5String or their syntax are refused', async () => {
      for (const name of [
        tlv(0x82, Buffer.from('caf\u00e9.fleet.example', 'utf8')), // not IA5 (an IDN not converted to its A-label)
        tlv(0x82, Buffer.from('bad..fleet.example')),
        tlv(0x82, Buffer.from(' ')), // §4.2.1.6: " " MUST NOT be used
        tlv(0x81, Buffer.from('no-at-sign.fleet.example')),
        tlv(0x86, Buffer.from('relative/path')), // §4.2.1.6: MUST NOT be a relative URI
        tlv(0x86, Buffer.from('urn:uuid:has space')),
      ]) {
        expectRefused(await refusedLeaf({ extra: [san(false, name)] }), 'bad_extension');
      }
    });

    test('fail: an iPAddress name constraint that is not 8 or 32 octets is refused', async () => {
      const nc = rawExtension('2.5.29.30', true, seq(tlv(0xa0, seq(tlv(0x87, Buffer.from([10, 0, 0, 0, 255, 0, 0]))))));
      const ncRoot = await make({ name: 'NC Root', ca: true, extra: [nc] });
      const child = await make({ name: 'child', issuer: ncRoot, ips: ['10.0.0.1'] });
      expectRefused(check({ leaf: child.der, trustAnchors: [ncRoot.der] }), 'bad_extension');
    });

    test('fail: an empty subject needs a critical, non-empty subjectAltName', async () => {
      expectRefused(await refusedLeaf({ subject: '', extra: [san(false, tlv(0x82, Buffer.from('a.fleet.example')))] }), 'bad_extension');
      expectRefused(await refusedLeaf({ subject: '', extra: [rawExtension('2.5.29.17', true, seq())] }), 'bad_extension');
      expect((await refusedLeaf({ subject: '', extra: [san(true, tlv(0x82, Buffer.from('a.fleet.example')))] })).ok).toBe(true);
    });

    test('well-formed dNSName, rfc822Name, URI and IPv6 names are accepted', async () => {
      const names = [tlv(0x82, Buffer.from('*.fleet.example')), tlv(0x81, Buffer.from('ops@fleet.example')), tlv(0x86, Buffer.from('urn:uuid:6f1c1a52-3e8b-4d6e-9a55-2b1f2f0e8c11')), tlv(0x87, Buffer.alloc(16, 1))];
      expect((await refusedLeaf({ extra: [san(false, ...names)] })).ok).toBe(true);
    });
  });

  test('fail-malformed input never throws', () => {
    expectRefused(check({ leaf: Buffer.from('not a certificate'), trustAnchors: [root.der] }), 'malformed');
    expectRefused(check({ leaf: leaf.der.subarray(0, leaf.der.length - 1), trustAnchors: [root.der] }), 'malformed');
    const trailing = Buffer.concat([leaf.der, Buffer.from([0])]);
    expectRefused(check({ leaf: trailing, trustAnchors: [root.der] }), 'malformed');
    expectRefused(check({ leaf: leaf.der, trustAnchors: [root.der], maxDepth: -1 }), 'invalid_input');
    expectRefused(check({ leaf: leaf.der, trustAnchors: [root.der], time: new Date(Number.NaN) }), 'invalid_input');
    expect(() => validateChain({ leaf: null as unknown as Buffer, trustAnchors: [] })).not.toThrow();
  });

  describe('work bounds', () => {
    // Five CAs share one name and cross-sign each other in every direction (20 certificates), and
    // none chains to the anchor: a naive builder explores every ordering of them.
    let loopLeaf: Made;
    let loop: Buffer[];
    beforeAll(async () => {
      const name = 'Loop CA';
      const keys: CryptoKeyPair[] = await Promise.all([0, 1, 2, 3, 4].map(() => newKeys()));
      const self = keys.map((k) => ({ der: Buffer.alloc(0), keys: k, name }));
      loop = [];
      for (const [i, subjectKeys] of keys.entries()) {
        for (const [j, signer] of self.entries()) {
          if (i !== j) loop.push((await make({ name, ca: true, keys: subjectKeys, issuer: signer })).der);
        }
      }
      loopLeaf = await make({ name: 'looped', issuer: self[0] as Made });
    });

    test('fail-cross-signed-loop hits the signature budget', () => {
      const started = performance.now();
      expectRefused(check({ leaf: loopLeaf.der, intermediates: loop, trustAnchors: [root.der], maxSignatureChecks: 16 }), 'work_limit');
      expect(performance.now() - started).toBeLessThan(1000);
    });

    test('fail-cross-signed-loop with a generous budget still terminates', () => {
      const started = performance.now();
      const r = check({ leaf: loopLeaf.der, intermediates: loop, trustAnchors: [root.der], maxSignatureChecks: 10_000, maxDepth: 30 });
      expect(r.ok).toBe(false);
      expect(r.ok ? '' : r.reason).toMatch(/^(untrusted|work_limit)$/);
      expect(performance.now() - started).toBeLessThan(2500);
    });

    test('fail-deadline of zero', () => {
      expectRefused(check({ leaf: leaf.der, intermediates: [inter.der], trustAnchors: [root.der], deadlineMs: 0 }), 'work_limit');
    });
  });
});

describe('path validator: acceptance', () => {
  test('leaf → intermediate → root, with usage, EKU and peer name', () => {
    const r = check({
      leaf: new X509Certificate(leaf.der),
      intermediates: [inter.der],
      trustAnchors: [root.der],
      requiredEku: [CLIENT_AUTH],
      requiredKeyUsage: ['digitalSignature'],
      peerName: { kind: 'dns', value: 'DEVICE-1.fleet.example' },
    });
    expect(r.ok ? r.chain.map((c) => c.subject) : r).toEqual(['CN=device-1', 'CN=Fleet Issuing', 'CN=Fleet Root']);
    expect(check({ leaf: leaf.der, intermediates: [inter.der], trustAnchors: [root.der], peerName: { kind: 'ip', value: '10.0.0.7' } }).ok).toBe(true);
  });

  test('tries the next candidate when a same-named intermediate is unusable', async () => {
    // A renewed intermediate (same name and key) next to its expired predecessor.
    const expired = await make({ name: 'Fleet Issuing', ca: true, issuer: root, keys: inter.keys, notBefore: new Date(0), notAfter: new Date(NOW.getTime() - DAY) });
    const r = check({ leaf: leaf.der, intermediates: [expired.der, inter.der], trustAnchors: [root.der] });
    expect(r.ok ? r.chain[1]?.raw.equals(inter.der) : r).toBe(true);
  });

  test('picks the issuer whose key matches among same-named CAs', async () => {
    const impostor = await make({ name: 'Fleet Issuing', ca: true, issuer: root });
    const r = check({ leaf: leaf.der, intermediates: [impostor.der, inter.der], trustAnchors: [root.der] });
    expect(r.ok ? r.chain[1]?.raw.equals(inter.der) : r).toBe(true);
  });

  test('a pinned leaf (itself a trust anchor) validates alone', () => {
    const r = check({ leaf: leaf.der, trustAnchors: [leaf.der] });
    expect(r.ok ? r.chain.length : r).toBe(1);
  });
});

// The certificates Fleetkey really has to accept: EK certificates a TPM manufacturer (here
// swtpm's local CA, TCG EK Credential Profile layout: empty-ish subject, critical SAN with TPM
// attributes, tcg-kp-EKCertificate EKU) issued through an intermediate.
// swtpm_setup 0.7 exits 1 on --version; only a missing binary (spawn error) means "not installed".
const HAS_SWTPM = spawnSync('swtpm_setup', ['--version']).error === undefined;
if (!HAS_SWTPM && process.env['CI'] === 'true') throw new Error('CI: swtpm_setup is not installed; .ci/run installs it');
const TCG_KP_EK_CERTIFICATE = '2.23.133.8.1';

describe.skipIf(!HAS_SWTPM)('path validator: swtpm EK certificate chains (skipped without swtpm_setup)', () => {
  let dir: string;
  const manufacture = (name: string): { rsa: Buffer; ecc: Buffer; issuer: Buffer; root: Buffer } => {
    const base = join(dir, name);
    for (const sub of ['state', 'ca', 'out']) mkdirSync(join(base, sub), { recursive: true });
    const ca = join(base, 'ca');
    writeFileSync(join(base, 'localca.conf'), `statedir = ${ca}\nsigningkey = ${ca}/signkey.pem\nissuercert = ${ca}/issuercert.pem\ncertserial = ${ca}/certserial\n`);
    writeFileSync(join(base, 'localca.options'), '--platform-manufacturer Fleetkey\n--platform-version 2.1\n--platform-model test\n');
    writeFileSync(
      join(base, 'setup.conf'),
      `create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = ${base}/localca.conf\ncreate_certs_tool_options = ${base}/localca.options\n`,
    );
    execFileSync('swtpm_setup', ['--tpm2', '--config', join(base, 'setup.conf'), '--tpmstate', join(base, 'state'), '--create-ek-cert', '--ecc', '--overwrite', '--write-ek-cert-files', join(base, 'out')], { stdio: 'ignore', timeout: 30_000 });
    return {
      rsa: readFileSync(join(base, 'out', 'ek-rsa2048.crt')),
      ecc: readFileSync(join(base, 'out', 'ek-secp384r1.crt')),
      issuer: readFileSync(join(ca, 'issuercert.pem')),
      root: readFileSync(join(ca, 'swtpm-localca-rootca-cert.pem')),
    };
  };
  let tpmA: ReturnType<typeof manufacture>;
  let tpmB: ReturnType<typeof manufacture>;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fleetkey-ek-'));
    tpmA = manufacture('a');
    tpmB = manufacture('b');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('fail-ek-chain-against-another-manufacturer-root', () => {
    expectRefused(validateChain({ leaf: tpmA.rsa, intermediates: [tpmA.issuer], trustAnchors: [tpmB.root] }), 'untrusted');
  });

  test('fail-ek-with-wrong-required-usage', () => {
    expectRefused(validateChain({ leaf: tpmA.rsa, intermediates: [tpmA.issuer], trustAnchors: [tpmA.root], requiredKeyUsage: ['digitalSignature'] }), 'key_usage');
  });

  test('RSA and ECC EK certificates validate to their manufacturer root', () => {
    for (const ek of [tpmA.rsa, tpmA.ecc]) {
      const r = validateChain({ leaf: ek, intermediates: [tpmA.issuer], trustAnchors: [tpmA.root], requiredEku: [TCG_KP_EK_CERTIFICATE] });
      expect(r.ok ? r.chain.length : r).toBe(3);
    }
  });
});
