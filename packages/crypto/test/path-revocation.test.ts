/**
 * Revocation input to the path validator (RFC 5280 §6.3): CRLs minted in-test with
 * @peculiar/x509 (an independent encoder), refusals first, each asserting its reason code.
 */
// tsyringe (inside @peculiar/x509) needs the Reflect metadata API before it loads.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, test } from 'vitest';
import { explicit, seq, tlv } from '../src/pki/der.js';
import { parseCrl } from '../src/x509/validate/crl-parse.js';
import { validateChain, type ValidationInput, type ValidationResult } from '../src/x509/validate/index.js';

x509.cryptoProvider.set(webcrypto as unknown as ReturnType<typeof x509.cryptoProvider.get>);

type Keys = webcrypto.CryptoKeyPair;
const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;
const NOW = new Date('2030-06-01T00:00:00Z');
const DP_URL = 'http://crl.maker.example/idevid.crl';

interface Cert {
  der: Buffer;
  keys: Keys;
  name: string;
  serial: string;
}

let serialCounter = 0x1000;
async function cert(o: { name: string; issuer?: Cert; ca?: boolean; ku?: x509.KeyUsageFlags; dp?: string[] | null }): Promise<Cert> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as Keys;
  const ca = o.ca ?? false;
  const serial = (serialCounter++).toString(16).padStart(4, '0');
  const ext: x509.Extension[] = [
    new x509.BasicConstraintsExtension(ca, undefined, true),
    new x509.KeyUsagesExtension(o.ku ?? (ca ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign : x509.KeyUsageFlags.digitalSignature), true),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  if (o.issuer) ext.push(await x509.AuthorityKeyIdentifierExtension.create(o.issuer.keys.publicKey));
  if (o.dp !== null && !ca) ext.push(new x509.CRLDistributionPointsExtension(o.dp ?? [DP_URL]));
  const c = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: `CN=${o.name}`,
    issuer: `CN=${o.issuer?.name ?? o.name}`,
    notBefore: new Date(NOW.getTime() - 30 * DAY),
    notAfter: new Date(NOW.getTime() + 365 * DAY),
    publicKey: keys.publicKey,
    signingKey: (o.issuer?.keys ?? keys).privateKey,
    signingAlgorithm: EC,
    extensions: ext,
  });
  return { der: Buffer.from(c.rawData), keys, name: o.name, serial };
}

interface CrlOptions {
  revoked?: { serial: string; reason?: x509.X509CrlReason }[];
  thisUpdate?: Date;
  nextUpdate?: Date | null;
  extensions?: x509.Extension[];
  entryExtensions?: x509.Extension[];
  signer?: Cert;
}

async function crl(issuer: Cert, o: CrlOptions = {}): Promise<Buffer> {
  const c = await x509.X509CrlGenerator.create({
    issuer: `CN=${issuer.name}`,
    thisUpdate: o.thisUpdate ?? new Date(NOW.getTime() - DAY),
    ...(o.nextUpdate === null ? {} : { nextUpdate: o.nextUpdate ?? new Date(NOW.getTime() + 7 * DAY) }),
    entries: (o.revoked ?? []).map((r) => ({
      serialNumber: r.serial,
      revocationDate: new Date(NOW.getTime() - 2 * DAY),
      ...(r.reason === undefined ? {} : { reason: r.reason }),
      // This generator writes an empty (non-DER) crlEntryExtensions for an entry without any, so
      // "unspecified" is written out (RFC 5280 §5.3.1 allows it).
      extensions: [...(o.entryExtensions ?? []), ...(r.reason === undefined ? [new x509.Extension('2.5.29.21', false, tlv(0x0a, Buffer.from([0])))] : [])],
    })),
    extensions: [await x509.AuthorityKeyIdentifierExtension.create((o.signer ?? issuer).keys.publicKey), new x509.Extension('2.5.29.20', false, tlv(0x02, Buffer.from([1]))), ...(o.extensions ?? [])],
    signingKey: (o.signer ?? issuer).keys.privateKey,
    signingAlgorithm: EC,
  });
  return Buffer.from(c.rawData);
}

/** issuingDistributionPoint value (RFC 5280 §5.2.5). */
function idp(o: { uri?: string; user?: boolean; ca?: boolean; reasons?: number[]; indirect?: boolean; attr?: boolean }): x509.Extension {
  const TRUE = Buffer.from([0xff]);
  const parts: Buffer[] = [];
  if (o.uri) parts.push(explicit(0, tlv(0xa0, tlv(0x86, Buffer.from(o.uri)))));
  if (o.user) parts.push(tlv(0x81, TRUE));
  if (o.ca) parts.push(tlv(0x82, TRUE));
  if (o.reasons !== undefined) parts.push(tlv(0x83, Buffer.from([0x00, ...o.reasons])));
  if (o.indirect) parts.push(tlv(0x84, TRUE));
  if (o.attr) parts.push(tlv(0x85, TRUE));
  return new x509.Extension('2.5.29.28', true, seq(...parts));
}

let root: Cert;
let inter: Cert;
let leaf: Cert;
let other: Cert;

beforeAll(async () => {
  root = await cert({ name: 'Maker Root', ca: true });
  inter = await cert({ name: 'Maker IDevID CA', ca: true, issuer: root });
  leaf = await cert({ name: 'robot-1', issuer: inter });
  other = await cert({ name: 'robot-2', issuer: inter });
});

const check = (crls: Buffer[], extra: Partial<ValidationInput> = {}): ValidationResult =>
  validateChain({ leaf: leaf.der, intermediates: [inter.der], trustAnchors: [root.der], time: NOW, revocation: { crls }, ...extra });

function refused(r: ValidationResult, reason: string, detail?: RegExp): void {
  expect(r.ok ? 'ok' : `${r.reason}: ${r.detail}`).toMatch(new RegExp(`^${reason}:`));
  if (detail && !r.ok) expect(r.detail).toMatch(detail);
}

describe('revocation (RFC 5280 §6.3): refusals', () => {
  test('fail: an IDevID its manufacturer revoked does not validate (reason in the detail)', async () => {
    const r = check([await crl(inter, { revoked: [{ serial: leaf.serial, reason: x509.X509CrlReason.keyCompromise }] }), await crl(root)]);
    refused(r, 'revoked', /keyCompromise/);
  });

  test('fail: a revoked intermediate CA revokes everything below it', async () => {
    refused(check([await crl(inter), await crl(root, { revoked: [{ serial: inter.serial, reason: x509.X509CrlReason.cACompromise }] })]), 'revoked', /depth 1.*cACompromise/);
  });

  test('fail: certificateHold counts as revoked', async () => {
    refused(check([await crl(inter, { revoked: [{ serial: leaf.serial, reason: x509.X509CrlReason.certificateHold }] }), await crl(root)]), 'revoked', /certificateHold/);
  });

  test('fail: no CRL at all is "unknown" and fails closed', () => {
    refused(check([]), 'revocation_unknown', /no CRL from its issuer/);
  });

  test('fail: a CRL for the leaf but none for the intermediate fails closed', async () => {
    refused(check([await crl(inter)]), 'revocation_unknown', /depth 1/);
  });

  test('fail: a CRL signed by another key is not used (and cannot un-revoke)', async () => {
    const forger = await cert({ name: 'Maker IDevID CA', ca: true });
    refused(check([await crl(inter, { signer: forger }), await crl(root)]), 'revocation_unknown', /authorityKeyIdentifier|signature/);
    // Same name, no AKI to tell them apart: the signature check decides.
    const c = await x509.X509CrlGenerator.create({ issuer: `CN=${inter.name}`, thisUpdate: new Date(NOW.getTime() - DAY), nextUpdate: new Date(NOW.getTime() + DAY), signingKey: forger.keys.privateKey, signingAlgorithm: EC });
    refused(check([Buffer.from(c.rawData), await crl(root)]), 'revocation_unknown', /signature does not verify/);
  });

  test('fail: a stale CRL (past nextUpdate), a CRL from the future, a CRL without nextUpdate', async () => {
    const rootCrl = await crl(root);
    refused(check([await crl(inter, { thisUpdate: new Date(NOW.getTime() - 9 * DAY), nextUpdate: new Date(NOW.getTime() - DAY) }), rootCrl]), 'revocation_unknown', /stale/);
    refused(check([await crl(inter, { thisUpdate: new Date(NOW.getTime() + DAY), nextUpdate: new Date(NOW.getTime() + 9 * DAY) }), rootCrl]), 'revocation_unknown', /future/);
    refused(check([await crl(inter, { nextUpdate: null }), rootCrl]), 'revocation_unknown', /without nextUpdate/);
  });

  test('fail: a delta CRL is refused (never used), even one that would clear the certificate', async () => {
    const delta = await crl(inter, { extensions: [new x509.Extension('2.5.29.27', true, tlv(0x02, Buffer.from([1])))] });
    refused(check([delta, await crl(root)]), 'revocation_unknown', /delta CRL/);
  });

  test('fail: an indirect CRL is refused', async () => {
    refused(check([await crl(inter, { extensions: [idp({ indirect: true })] }), await crl(root)]), 'revocation_unknown', /indirect/);
  });

  test('fail: an unknown critical CRL extension or CRL entry extension makes the CRL unusable', async () => {
    const rootCrl = await crl(root);
    const odd = new x509.Extension('1.3.6.1.4.1.99999.1', true, tlv(0x05, Buffer.alloc(0)));
    refused(check([await crl(inter, { extensions: [odd] }), rootCrl]), 'revocation_unknown', /critical CRL extension/);
    refused(check([await crl(inter, { revoked: [{ serial: other.serial }], entryExtensions: [odd] }), rootCrl]), 'revocation_unknown', /critical CRL entry extension/);
    // The same extension, non-critical, is ignored.
    expect(check([await crl(inter, { extensions: [new x509.Extension('1.3.6.1.4.1.99999.1', false, tlv(0x05, Buffer.alloc(0)))] }), rootCrl]).ok).toBe(true);
  });

  test('fail: issuingDistributionPoint scope: a CA-only, attribute-only or other-partition CRL does not cover a leaf', async () => {
    const rootCrl = await crl(root);
    refused(check([await crl(inter, { extensions: [idp({ ca: true })] }), rootCrl]), 'revocation_unknown', /CA certificates only/);
    refused(check([await crl(inter, { extensions: [idp({ attr: true })] }), rootCrl]), 'revocation_unknown', /attribute certificates only/);
    refused(check([await crl(inter, { extensions: [idp({ uri: 'http://crl.maker.example/other.crl' })] }), rootCrl]), 'revocation_unknown', /distribution point/);
    // A user-only CRL of the root does not cover the intermediate CA.
    refused(check([await crl(inter), await crl(root, { extensions: [idp({ user: true })] })]), 'revocation_unknown', /end-entity certificates only/);
  });

  test('fail: onlySomeReasons: a CRL covering only keyCompromise leaves the status unknown', async () => {
    // ReasonFlags (named bits, first bit 0x80): bit 1 = keyCompromise = 0x40.
    refused(check([await crl(inter, { extensions: [idp({ reasons: [0x40] })] }), await crl(root)]), 'revocation_unknown', /only some reasons/);
  });

  test('fail: an older CRL from the same issuer cannot hide a newer revocation', async () => {
    const older = await crl(inter, { thisUpdate: new Date(NOW.getTime() - 3 * DAY) });
    const newer = await crl(inter, { revoked: [{ serial: leaf.serial }] });
    refused(check([older, newer, await crl(root)]), 'revoked', /unspecified/);
    refused(check([newer, older, await crl(root)]), 'revoked');
  });
});

describe('revocation: what passes', () => {
  test('good: fresh CRLs of both issuers that do not list the path', async () => {
    const r = check([await crl(inter, { revoked: [{ serial: other.serial }] }), await crl(root)]);
    expect(r.ok && r.revocation).toBe('good');
  });

  test('good: a partitioned CRL whose IDP names the certificate\'s CRL distribution point, user certs only', async () => {
    const r = check([await crl(inter, { extensions: [idp({ uri: DP_URL, user: true })] }), await crl(root, { extensions: [idp({ ca: true })] })]);
    expect(r.ok ? 'ok' : r.detail).toBe('ok');
  });

  test('good: two onlySomeReasons CRLs that together cover every reason', async () => {
    const r = check([await crl(inter, { extensions: [idp({ reasons: [0x40] })] }), await crl(inter, { extensions: [idp({ reasons: [0x3f, 0x80] })] }), await crl(root)]);
    expect(r.ok ? 'ok' : r.detail).toBe('ok');
  });

  test('a certificateHold released in a newer CRL no longer counts', async () => {
    const held = await crl(inter, { thisUpdate: new Date(NOW.getTime() - 3 * DAY), revoked: [{ serial: leaf.serial, reason: x509.X509CrlReason.certificateHold }] });
    expect(check([held, await crl(inter), await crl(root)]).ok).toBe(true);
  });

  test('unknown: allowed when the caller says so, and reported', async () => {
    const r = validateChain({ leaf: leaf.der, intermediates: [inter.der], trustAnchors: [root.der], time: NOW, revocation: { crls: [], unknown: 'allow' } });
    expect(r.ok && r.revocation).toBe('unknown');
    // ...but a revoked certificate is refused whatever `unknown` says.
    const revoked = await crl(inter, { revoked: [{ serial: leaf.serial }] });
    refused(validateChain({ leaf: leaf.der, intermediates: [inter.der], trustAnchors: [root.der], time: NOW, revocation: { crls: [revoked], unknown: 'allow' } }), 'revoked');
  });

  test('PEM CRLs and CRLs produced by openssl-compatible encoders are read; without revocation input nothing changes', async () => {
    const pem = x509.PemConverter.encode(await crl(inter), 'X509 CRL');
    expect(check([Buffer.from(pem), await crl(root)]).ok).toBe(true);
    const r = validateChain({ leaf: leaf.der, intermediates: [inter.der], trustAnchors: [root.der], time: NOW });
    expect(r.ok && r.revocation).toBe(undefined);
  });
});

describe('CRL parser: strict, never throws', () => {
  test('fail: structural defects are `malformed`', async () => {
    const good = await crl(inter, { revoked: [{ serial: leaf.serial, reason: x509.X509CrlReason.keyCompromise }] });
    expect(parseCrl(good)).toMatchObject({ crlNumber: 1n });
    // An entry with an empty crlEntryExtensions (SIZE (1..MAX) violated), as one encoder writes it.
    const c = await x509.X509CrlGenerator.create({ issuer: `CN=${inter.name}`, thisUpdate: NOW, nextUpdate: new Date(NOW.getTime() + DAY), entries: [{ serialNumber: leaf.serial }], signingKey: inter.keys.privateKey, signingAlgorithm: EC });
    for (const bad of [Buffer.from(c.rawData), Buffer.alloc(0), good.subarray(0, good.length - 1), Buffer.concat([good, Buffer.from([0])]), Buffer.from('30800000', 'hex')]) {
      expect(parseCrl(bad)).toMatchObject({ code: 'malformed' });
    }
  });

  test('fail: byte mutations of a CRL never throw and never revoke-by-accident into "good"', async () => {
    const good = await crl(inter, { revoked: [{ serial: leaf.serial, reason: x509.X509CrlReason.keyCompromise }], extensions: [idp({ uri: DP_URL, user: true })] });
    const rootCrl = await crl(root);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 3 }), (pos, byte, mode) => {
        const m = Buffer.from(good);
        if (mode === 0) m[pos] = byte;
        else if (mode === 1) m[pos] = (m[pos] as number) ^ (1 << (byte & 7));
        const input = mode === 2 ? Buffer.concat([m.subarray(0, pos), m.subarray(pos + 1)]) : mode === 3 ? Buffer.concat([m.subarray(0, pos), Buffer.from([byte]), m.subarray(pos)]) : m;
        const parsed = parseCrl(input);
        expect(parsed).toBeTypeOf('object');
        const r = check([input, rootCrl]);
        // A mutated CRL is either refused as a whole (signature, syntax) or, if it still
        // verifies, is the original: the leaf is never found "good".
        expect(r.ok).toBe(false);
      }),
      { numRuns: 1500 },
    );
  });
});
