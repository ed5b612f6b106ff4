import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseAndVerifyCsr, toPem } from '@fleetkey/crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { createCsr, type KeyHandle, type Keystore } from '../src/keystore/index.js';
import { ALL_BACKENDS, fileBackend, type KeystoreBackend } from './support/keystores.js';

const run = promisify(execFile);
const code = (c: string) => expect.objectContaining({ code: c });

let scratch: string;
let n = 0;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'fk-csr-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** OpenSSL's independent check of the self-signature (proof of possession, RFC 2986 §3). */
async function opensslVerifies(der: Buffer): Promise<boolean> {
  const path = join(scratch, `req${++n}.der`);
  await writeFile(path, der);
  try {
    const { stdout, stderr } = await run('openssl', ['req', '-inform', 'DER', '-in', path, '-verify', '-noout']);
    return /verify OK/i.test(stdout + stderr);
  } catch {
    return false;
  }
}

describe('createCsr refusals', () => {
  let backend: KeystoreBackend;
  let ks: Keystore;
  let key: KeyHandle;
  beforeAll(async () => {
    backend = await fileBackend.create();
    ks = await backend.open();
    key = await ks.generateKey('device', 'P-256');
  });
  afterAll(async () => {
    await ks?.close();
    await backend?.cleanup();
  });

  it.each(['', 'x'.repeat(65), 'line\nbreak', 'nul\0'])('fail: commonName %j is refused', async (cn) => {
    await expect(createCsr(key, { commonName: cn })).rejects.toThrow(RangeError);
  });

  it('fail: a key whose signatures do not match its public key never yields a CSR', async () => {
    const other = await ks.generateKey('other', 'P-256');
    // A token answering with some other key's signature (wrong object, faulty firmware).
    const lying: KeyHandle = { ...key, label: key.label, sign: (d: Uint8Array) => other.sign(d), tlsKey: () => undefined, close: async () => {} };
    await expect(createCsr(lying, { commonName: 'dev' })).rejects.toThrow(code('CSR_SIGNATURE_INVALID'));
  });

  it('fail: any change to a signed CSR is caught by parseAndVerifyCsr and by OpenSSL', async () => {
    const der = await createCsr(key, { commonName: 'device-0001' });
    const at = der.indexOf(Buffer.from('device-0001'));
    expect(at).toBeGreaterThan(0);
    const tampered = Buffer.from(der);
    tampered[at] = 'e'.charCodeAt(0); // CN becomes "eevice-0001"
    expect(() => parseAndVerifyCsr(tampered)).toThrow(code('CSR_SIGNATURE_INVALID'));
    expect(await opensslVerifies(tampered)).toBe(false);
    expect(await opensslVerifies(der)).toBe(true); // the check above can pass
  });

  it('encodes RFC 2986 exactly: v1(0), UTF8String CN, empty [0] attributes, ECDSA with absent parameters', async () => {
    const der = await createCsr(key, { commonName: 'Ünïcode-dev' });
    const req = AsnConvert.parse(der, CertificationRequest);
    expect(req.certificationRequestInfo.version).toBe(0);
    expect(req.certificationRequestInfo.subject[0]?.[0]?.value.utf8String).toBe('Ünïcode-dev');
    expect(req.signatureAlgorithm.algorithm).toBe('1.2.840.10045.4.3.2');
    expect(req.signatureAlgorithm.parameters).toBeUndefined();
    // The DER ends its CertificationRequestInfo with an empty context [0] SET, as OpenSSL writes it.
    const infoDer = Buffer.from(AsnConvert.serialize(req.certificationRequestInfo));
    expect(infoDer.subarray(-2).equals(Buffer.from([0xa0, 0x00]))).toBe(true);
    expect(parseAndVerifyCsr(der).subject).toBe('CN=Ünïcode-dev');
    expect(parseAndVerifyCsr(toPem(der, 'CERTIFICATE REQUEST')).der.equals(der)).toBe(true);
  });
});

// Every keystore signs its CSR through its own handle; the token keys never leave the token.
for (const factory of ALL_BACKENDS) {
  const missing = await factory.missing();
  describe.skipIf(missing !== null)(`createCsr through ${factory.name}${missing === null ? '' : ` (skipped: ${missing})`}`, () => {
    let backend: KeystoreBackend;
    let ks: Keystore;
    beforeAll(async () => {
      backend = await factory.create();
    });
    afterAll(async () => {
      await backend?.cleanup();
    });
    beforeEach(async () => {
      ks = await backend.open();
    });
    afterEach(async () => {
      await ks?.close();
    });

    it('each supported curve: the CSR verifies with parseAndVerifyCsr and with openssl req -verify', async () => {
      for (const curve of backend.curves) {
        const key = await ks.generateKey(`csr-${curve}`, curve);
        const cn = `c2c38155-b0d2-48b6-82fd-22fe3b31622${curve === 'P-256' ? '4' : '5'}`;
        const der = await createCsr(key, { commonName: cn });
        const csr = parseAndVerifyCsr(der);
        expect(csr.keyType).toBe(curve === 'P-256' ? 'p256' : 'p384');
        expect(csr.subject).toBe(`CN=${cn}`);
        expect(csr.spkiDer.equals(key.spkiDer)).toBe(true);
        expect(csr.signatureAlgorithm).toBe(curve === 'P-256' ? '1.2.840.10045.4.3.2' : '1.2.840.10045.4.3.3');
        expect(await opensslVerifies(der)).toBe(true);
      }
    });
  });
}
