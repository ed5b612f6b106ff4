/**
 * TPM attestation against a real TPM: swtpm manufactured with EK certificates from a local CA,
 * driven by tpm2-tools. Our makeCredential output must be activated by the TPM's own
 * TPM2_ActivateCredential (TPM 2.0 Part 3 §12.5), for RSA-2048, ECC P-256 and ECC P-384 EKs;
 * tpm2_makecredential's output is the independent second implementation.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EK_CERT_NV_INDEX,
  TPMA_OBJECT,
  checkAkAttributes,
  computeName,
  ekCertificateFromNv,
  makeCredential,
  parseTpm2bPublic,
  verifyCredentialProof,
  verifyEkCertificate,
  type MakeCredentialResult,
  type TpmPublic,
} from '../src/tpm/index.js';
import { ExecError, startSwtpm, swtpmMissing, type Swtpm } from './support/swtpm.js';
import { codeOfSync } from './support/codes.js';

const missing = await swtpmMissing();

interface Ek {
  /** tpm2-tools object reference: a saved context file or a persistent handle. */
  readonly ref: string;
  readonly bytes: Buffer;
  readonly pub: TpmPublic;
}

describe.skipIf(missing !== null)(`TPM attestation against swtpm${missing === null ? '' : ` (skipped: ${missing})`}`, () => {
  let tpm: Swtpm;
  let ekRsa: Ek;
  let ekP256: Ek;
  let ekP384: Ek;
  let akEcc: { bytes: Buffer; pub: TpmPublic; toolName: Buffer; ctx: string };
  let akRsa: { bytes: Buffer; pub: TpmPublic; toolName: Buffer; ctx: string };
  let root: X509Certificate;
  let issuer: X509Certificate;
  let n = 0;
  const scratch = (ext: string): string => tpm.path(`t${++n}.${ext}`);

  beforeAll(async () => {
    tpm = await startSwtpm();
    root = new X509Certificate(tpm.rootCaPem);
    issuer = new X509Certificate(tpm.issuerCaPem);

    const createEk = async (alg: 'rsa' | 'ecc'): Promise<Ek> => {
      await tpm.tpm2('tpm2_createek', ['-c', `ek-${alg}.ctx`, '-G', alg, '-u', `ek-${alg}.pub`]);
      const bytes = await readFile(tpm.path(`ek-${alg}.pub`));
      return { ref: `ek-${alg}.ctx`, bytes, pub: parseTpm2bPublic(bytes) };
    };
    ekRsa = await createEk('rsa');
    ekP256 = await createEk('ecc');
    // swtpm_setup --ecc persists a P-384 EK (SHA-384 nameAlg, AES-256) and certifies it.
    await tpm.tpm2('tpm2_readpublic', ['-c', '0x81010016', '-o', 'ek-p384.pub', '-f', 'tss']);
    const p384 = await readFile(tpm.path('ek-p384.pub'));
    ekP384 = { ref: '0x81010016', bytes: p384, pub: parseTpm2bPublic(p384) };

    const createAk = async (alg: 'ecc' | 'rsa', scheme: string) => {
      const { stdout } = await tpm.tpm2('tpm2_createak', [
        ...['-C', ekRsa.ref, '-c', `ak-${alg}.ctx`, '-G', alg, '-g', 'sha256', '-s', scheme],
        ...['-u', `ak-${alg}.pub`, '-n', `ak-${alg}.name`, '-f', 'tss'],
      ]);
      const bytes = await readFile(tpm.path(`ak-${alg}.pub`));
      const toolName = await readFile(tpm.path(`ak-${alg}.name`));
      // The tool also prints the name it got back from TPM2_Load: all three must agree.
      const printed = /^\s*name:\s*([0-9a-f]+)\s*$/m.exec(stdout)?.[1];
      expect(printed).toBe(toolName.toString('hex'));
      return { bytes, pub: parseTpm2bPublic(bytes), toolName, ctx: `ak-${alg}.ctx` };
    };
    akEcc = await createAk('ecc', 'ecdsa');
    akRsa = await createAk('rsa', 'rsassa');
  }, 60_000);

  afterAll(async () => {
    await tpm?.stop();
  });

  /** Writes the tpm2-tools credential file: 0xBADCC0DE, version 1, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET. */
  async function writeCredFile(mc: MakeCredentialResult): Promise<string> {
    const header = Buffer.from('badcc0de00000001', 'hex');
    const file = scratch('cred');
    await writeFile(file, Buffer.concat([header, mc.credentialBlob, mc.encryptedSecret]));
    return file;
  }

  /**
   * TPM2_ActivateCredential with the AK and the EK. The TCG EK templates clear userWithAuth, so
   * the EK is authorised by PolicySecret(TPM_RH_ENDORSEMENT) (its authPolicy); swtpm's P-384 EK
   * sets userWithAuth and takes the (empty) password.
   */
  async function activate(ek: Ek, akCtx: string, credFile: string): Promise<Buffer> {
    const out = scratch('secret');
    if ((ek.pub.objectAttributes & TPMA_OBJECT.userWithAuth) !== 0) {
      await tpm.tpm2('tpm2_activatecredential', ['-c', akCtx, '-C', ek.ref, '-i', credFile, '-o', out]);
      return readFile(out);
    }
    const session = scratch('session');
    await tpm.tpm2('tpm2_startauthsession', ['--policy-session', '-S', session]);
    try {
      await tpm.tpm2('tpm2_policysecret', ['-S', session, '-c', 'e']);
      await tpm.tpm2('tpm2_activatecredential', ['-c', akCtx, '-C', ek.ref, '-i', credFile, '-o', out, '-P', `session:${session}`]);
    } finally {
      // A policy session survives a failed command; flush it or the TPM runs out of sessions.
      await tpm.tpm2('tpm2_flushcontext', [session]).catch(() => undefined);
    }
    return readFile(out);
  }

  async function activationFails(ek: Ek, akCtx: string, credFile: string): Promise<string> {
    try {
      await activate(ek, akCtx, credFile);
    } catch (e) {
      if (e instanceof ExecError) return e.stderr;
      throw e;
    }
    throw new Error('activation unexpectedly succeeded');
  }

  describe('public areas and names from the TPM', () => {
    it('EKs parse with the TCG template parameters', () => {
      expect(ekRsa.pub.type === 'rsa' && ekRsa.pub.keyBits).toBe(2048);
      expect(ekRsa.pub.symmetric).toEqual({ algorithm: 'aes', keyBits: 128, mode: 'cfb' });
      expect(ekP256.pub.type === 'ecc' && ekP256.pub.curve).toBe('P-256');
      expect(ekP384.pub.type === 'ecc' && ekP384.pub.curve).toBe('P-384');
      expect(ekP384.pub.nameAlg).toBe('sha384');
      expect(ekP384.pub.symmetric?.keyBits).toBe(256);
    });

    it('computeName equals the Name the TPM returned for each AK', () => {
      expect(computeName(akEcc.bytes.subarray(2)).toString('hex')).toBe(akEcc.toolName.toString('hex'));
      expect(computeName(akRsa.pub).toString('hex')).toBe(akRsa.toolName.toString('hex'));
    });

    it('computeName equals the Name tpm2_readpublic reports for a SHA-384 EK', async () => {
      const { stdout } = await tpm.tpm2('tpm2_readpublic', ['-c', '0x81010016']);
      const reported = /^name:\s*([0-9a-f]+)\s*$/m.exec(stdout)?.[1];
      expect(reported).toMatch(/^000c[0-9a-f]{96}$/);
      expect(computeName(ekP384.pub).toString('hex')).toBe(reported);
    });

    it('tpm2_createak keys pass checkAkAttributes', () => {
      expect(checkAkAttributes(akEcc.pub)).toEqual({ scheme: 'ecdsa', hash: 'sha256' });
      expect(checkAkAttributes(akRsa.pub)).toEqual({ scheme: 'rsassa', hash: 'sha256' });
    });

    it('fail: TPM-made keys without restricted, or without fixedTPM/fixedParent, are not AKs', async () => {
      // Not restricted: a general signing key would sign a forged TPMS_ATTEST.
      await tpm.tpm2('tpm2_createprimary', [
        ...['-C', 'o', '-G', 'ecc256:ecdsa-sha256', '-c', 'nr.ctx'],
        ...['-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign'],
      ]);
      await tpm.tpm2('tpm2_readpublic', ['-c', 'nr.ctx', '-o', 'nr.pub', '-f', 'tss']);
      const nr = parseTpm2bPublic(await readFile(tpm.path('nr.pub')));
      expect(() => checkAkAttributes(nr)).toThrowError(expect.objectContaining({ code: 'TPM_AK_ATTRIBUTES', detail: 'restricted is clear' }));

      // Duplicable: restricted signing key that may leave this TPM.
      await tpm.tpm2('tpm2_createprimary', ['-C', 'o', '-c', 'srk.ctx']);
      await tpm.tpm2('tpm2_create', [
        ...['-C', 'srk.ctx', '-G', 'ecc256:ecdsa-sha256:null', '-u', 'dup.pub', '-r', 'dup.priv'],
        ...['-a', 'sensitivedataorigin|userwithauth|restricted|sign'],
      ]);
      const dup = parseTpm2bPublic(await readFile(tpm.path('dup.pub')));
      expect(() => checkAkAttributes(dup)).toThrowError(expect.objectContaining({ code: 'TPM_AK_ATTRIBUTES', detail: 'fixedTPM is clear' }));
    });
  });

  describe('makeCredential activated by TPM2_ActivateCredential', () => {
    it.each([
      ['RSA-2048', () => ekRsa],
      ['ECC P-256', () => ekP256],
      ['ECC P-384 (SHA-384, AES-256)', () => ekP384],
    ])('our blob for the %s EK activates to the credential', async (_label, ek) => {
      const credential = Buffer.from('fleetkey nonce 0123456789abcdef');
      const mc = makeCredential({ ekPublic: ek().bytes, akName: computeName(akEcc.pub), credential });
      const recovered = await activate(ek(), akEcc.ctx, await writeCredFile(mc));
      expect(recovered.equals(credential)).toBe(true);
      verifyCredentialProof(credential, recovered);
    });

    it('a full-size credential (one nameAlg digest) with an RSA AK', async () => {
      const credential = Buffer.alloc(32, 0xa5);
      const mc = makeCredential({ ekPublic: ekRsa.pub, akName: computeName(akRsa.pub), credential });
      expect((await activate(ekRsa, akRsa.ctx, await writeCredFile(mc))).equals(credential)).toBe(true);
    });

    it.each([
      ['RSA-2048', () => ekRsa],
      ['ECC P-256', () => ekP256],
    ])('cross-check: tpm2_makecredential for the %s EK activates the same way', async (_label, ek) => {
      const secret = scratch('in');
      const credential = Buffer.from('same secret, other implementation');
      await writeFile(secret, credential.subarray(0, 32));
      const out = scratch('cred');
      const akName = computeName(akEcc.pub).toString('hex');
      await tpm.tpm2('tpm2_makecredential', ['-T', 'none', '-u', ek().ref.replace('.ctx', '.pub'), '-s', secret, '-n', akName, '-o', out]);
      const theirs = await readFile(out);
      const ours = makeCredential({ ekPublic: ek().pub, akName: computeName(akEcc.pub), credential: credential.subarray(0, 32) });
      // Same structure sizes (the seed is random, so the bytes differ).
      expect(theirs.length).toBe(8 + ours.credentialBlob.length + ours.encryptedSecret.length);
      expect(theirs.subarray(8, 10).equals(ours.credentialBlob.subarray(0, 2))).toBe(true);
      const a = await activate(ek(), akEcc.ctx, out);
      const b = await activate(ek(), akEcc.ctx, await writeCredFile(ours));
      expect(a.equals(credential.subarray(0, 32))).toBe(true);
      expect(b.equals(a)).toBe(true);
    });

    it('fail: a blob made for another AK name is refused by the TPM', async () => {
      const mc = makeCredential({ ekPublic: ekRsa.pub, akName: computeName(akRsa.pub), credential: Buffer.from('x'.repeat(16)) });
      const stderr = await activationFails(ekRsa, akEcc.ctx, await writeCredFile(mc));
      expect(stderr).toMatch(/integrity/i);
    });

    type Mutation = (mc: MakeCredentialResult) => MakeCredentialResult;
    it.each<[string, Mutation, RegExp]>([
      ['the integrity HMAC', (mc) => ({ ...mc, credentialBlob: flip(mc.credentialBlob, 10) }), /integrity check failed/],
      ['the encrypted credential', (mc) => ({ ...mc, credentialBlob: flip(mc.credentialBlob, mc.credentialBlob.length - 1) }), /integrity check failed/],
      // RSA: OAEP decoding fails; ECC: the flipped ephemeral point is off the curve.
      ['the encrypted seed', (mc) => ({ ...mc, encryptedSecret: flip(mc.encryptedSecret, 40) }), /Esys_ActivateCredential\(0x[0-9A-F]+\) - tpm:/],
    ])('fail: one flipped bit in %s is refused by the TPM (RSA and P-256 EK)', async (_label, mutate, expected) => {
      for (const ek of [ekRsa, ekP256]) {
        const mc = makeCredential({ ekPublic: ek.pub, akName: computeName(akEcc.pub), credential: Buffer.from('y'.repeat(16)) });
        expect(await activationFails(ek, akEcc.ctx, await writeCredFile(mutate(mc)))).toMatch(expected);
      }
    });
  });

  describe('EK certificates from NV', () => {
    let certRsa: Buffer;
    let certP384: Buffer;

    beforeAll(async () => {
      const read = async (index: number): Promise<Buffer> => {
        const out = scratch('der');
        await tpm.tpm2('tpm2_nvread', [`0x${index.toString(16)}`, '-C', 'o', '-o', out]);
        return ekCertificateFromNv(await readFile(out));
      };
      certRsa = await read(EK_CERT_NV_INDEX.rsa2048);
      certP384 = await read(EK_CERT_NV_INDEX.eccP384);
    });

    it('certify the EKs the TPM regenerates and chain to the manufacturer root', () => {
      const r = verifyEkCertificate({ ekCertDer: certRsa, ekPublic: ekRsa.bytes, roots: [root], intermediates: [issuer] });
      expect(r.chain.map((c) => c.fingerprint256)).toEqual([issuer.fingerprint256, root.fingerprint256]);
      const e = verifyEkCertificate({ ekCertDer: certP384, ekPublic: ekP384.pub, roots: [root], intermediates: [issuer] });
      expect(e.certificate.publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
    });

    it('fail: the certificate of another EK (TPM_EK_CERT_MISMATCH)', () => {
      const base = { roots: [root], intermediates: [issuer] };
      expect(codeOfSync(() => verifyEkCertificate({ ...base, ekCertDer: certRsa, ekPublic: ekP384.pub }))).toBe('TPM_EK_CERT_MISMATCH');
      expect(codeOfSync(() => verifyEkCertificate({ ...base, ekCertDer: certP384, ekPublic: ekP256.pub }))).toBe('TPM_EK_CERT_MISMATCH');
    });

    it('fail: no trusted root, an impostor root with the same name, or outside validity (TPM_EK_UNTRUSTED)', async () => {
      const base = { ekCertDer: certRsa, ekPublic: ekRsa.pub };
      expect(codeOfSync(() => verifyEkCertificate({ ...base, roots: [], intermediates: [issuer, root] }))).toBe('TPM_EK_UNTRUSTED');
      expect(codeOfSync(() => verifyEkCertificate({ ...base, roots: [root] }))).toBe('TPM_EK_UNTRUSTED');
      const impostor = await impostorOf(root, tpm.dir);
      expect(codeOfSync(() => verifyEkCertificate({ ...base, roots: [impostor], intermediates: [issuer] }))).toBe('TPM_EK_UNTRUSTED');
      const before = new Date(Date.parse(new X509Certificate(certRsa).validFrom) - 60_000);
      expect(codeOfSync(() => verifyEkCertificate({ ...base, roots: [root], intermediates: [issuer], time: before }))).toBe('TPM_EK_UNTRUSTED');
      // The EK certificate itself cannot act as its own issuer.
      expect(codeOfSync(() => verifyEkCertificate({ ...base, roots: [new X509Certificate(certRsa)] }))).toBe('TPM_EK_UNTRUSTED');
    });

    it('fail: the manufacturer CA is not accepted as an EK certificate, nor PEM or padded input', () => {
      const base = { ekPublic: ekRsa.pub, roots: [root], intermediates: [issuer] };
      expect(codeOfSync(() => verifyEkCertificate({ ...base, ekCertDer: issuer.raw }))).toBe('TPM_EK_CERT_MISMATCH');
      expect(codeOfSync(() => verifyEkCertificate({ ...base, ekCertDer: Buffer.concat([certRsa, Buffer.from([0])]) }))).toBe('TPM_EK_CERT_MALFORMED');
      expect(codeOfSync(() => verifyEkCertificate({ ...base, ekCertDer: Buffer.from(new X509Certificate(certRsa).toString()) }))).toBe(
        'TPM_EK_CERT_MALFORMED',
      );
      expect(codeOfSync(() => verifyEkCertificate({ ...base, ekCertDer: certRsa.subarray(0, 500) }))).toBe('TPM_EK_CERT_MALFORMED');
    });

    it('the issuing CA alone may be the trust anchor', () => {
      const r = verifyEkCertificate({ ekCertDer: certRsa, ekPublic: ekRsa.pub, roots: [issuer] });
      expect(r.chain).toHaveLength(1);
    });
  });
});

function flip(b: Buffer, at: number): Buffer {
  const out = Buffer.from(b);
  out[at]! ^= 0x01;
  return out;
}

/** A self-signed CA (openssl) with the same subject as `real` but its own key: same name, wrong key. */
async function impostorOf(real: X509Certificate, dir: string): Promise<X509Certificate> {
  const subject = '/' + real.subject.split('\n').join('/');
  const out = `${dir}/impostor.pem`;
  await promisify(execFile)('openssl', [
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${dir}/impostor.key`],
    ...['-out', out, '-days', '2', '-subj', subject],
    ...['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
  ]);
  const cert = new X509Certificate(await readFile(out));
  expect(cert.subject).toBe(real.subject);
  return cert;
}
