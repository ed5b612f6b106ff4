import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { SoftwareSigner } from '../../src/signer/software-signer.js';
import { createIntermediateCa, createIssuerTemplate, createRootCa, type IssuerTemplate } from '../../src/pki/index.js';

export type Curve = 'P-256' | 'P-384';
const NAMED: Record<Curve, string> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1' };

export function ecKey(curve: Curve = 'P-256'): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: NAMED[curve] });
}

export const spkiOf = (k: KeyObject): Buffer => k.export({ type: 'spki', format: 'der' });

const HOUR = 3_600_000;
const YEAR = 365 * 24 * HOUR;

export interface TestPki {
  readonly rootDer: Buffer;
  readonly rootSigner: SoftwareSigner;
  readonly intermediateDer: Buffer;
  readonly intermediateSigner: SoftwareSigner;
  readonly template: IssuerTemplate;
}

/** A root and an issuing intermediate, on the given curves, with a device issuer template. */
export async function makeTestPki(rootCurve: Curve = 'P-256', intermediateCurve: Curve = 'P-256'): Promise<TestPki> {
  const now = Date.now();
  const rootSigner = new SoftwareSigner(ecKey(rootCurve).privateKey);
  const root = await createRootCa({
    subject: 'CN=Fleetkey Test Root,O=Fleetkey Tests',
    signer: rootSigner,
    validity: { notBefore: new Date(now - HOUR), notAfter: new Date(now + 10 * YEAR) },
    pathLen: 1,
  });
  const intKey = ecKey(intermediateCurve);
  const intermediateSigner = new SoftwareSigner(intKey.privateKey);
  const intermediate = await createIntermediateCa({
    subject: 'CN=Fleetkey Test Devices CA,O=Fleetkey Tests',
    publicKey: intKey.publicKey,
    issuerCertificate: root.der,
    issuerSigner: rootSigner,
    pathLen: 0,
    validity: { notBefore: new Date(now - HOUR), notAfter: new Date(now + 5 * YEAR) },
  });
  const template = createIssuerTemplate({
    issuerCertificate: intermediate.der,
    signer: intermediateSigner,
    crlUrl: 'http://127.0.0.1:8080/crl/devices.crl',
    ocspUrl: 'http://127.0.0.1:8080/ocsp',
    caIssuersUrl: 'http://127.0.0.1:8080/ca/devices.cer',
  });
  return { rootDer: root.der, rootSigner, intermediateDer: intermediate.der, intermediateSigner, template };
}

export function deviceRequest(overrides: Partial<{ deviceId: string; spkiDer: Buffer; method: string; kind: 'operational' | 'idevid'; days: number; clockSkewMs: number }> = {}) {
  const now = Date.now();
  return {
    deviceId: overrides.deviceId ?? randomUUID(),
    spkiDer: overrides.spkiDer ?? spkiOf(ecKey().publicKey),
    notBefore: new Date(now),
    notAfter: new Date(now + (overrides.days ?? 30) * 24 * HOUR),
    method: overrides.method ?? 'x509:enr-0001',
    kind: overrides.kind ?? 'operational',
    ...(overrides.clockSkewMs === undefined ? {} : { clockSkewMs: overrides.clockSkewMs }),
  } as const;
}
