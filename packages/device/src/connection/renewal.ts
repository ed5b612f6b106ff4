import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { toPem, zero } from '@fleetkey/crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import { createCsr } from '../keystore/create-csr.js';
import type { Keystore, KeyHandle } from '../keystore/keystore.js';
import { nextOperationalLabel } from '../provisioning/bundle-keystore.js';
import { BUNDLE_FILES, writeProvisioned, type LoadedBundle, type ProvisionedRecord } from '../provisioning/bundle.js';
import { DevicePlaneClient } from '../provisioning/device-plane-client.js';
import { matches, schemaErrors } from '../provisioning/schema-check.js';
import { splitPemCertificates } from '../provisioning/verify-result.js';
import { operationalKey } from './credentials.js';

/** The device plane's answer to POST /device/v1/renew (packages/server/src/http/device-app.ts). */
const RenewAnswer = Type.Object({
  serial: Type.String(),
  certificatePem: Type.String(),
  chainPem: Type.String(),
  notAfter: Type.String({ format: 'date-time' }),
  renewAfter: Type.String({ format: 'date-time' }),
});

/**
 * When to renew: the server's `renewAfter` when it gave one, else two thirds of the certificate's
 * lifetime (DESIGN.md §3, "Renew and rotate"), read from the certificate itself.
 */
export function renewalDueAt(record: ProvisionedRecord): Date {
  const given = Date.parse(record.renewAfter);
  if (!Number.isNaN(given)) return new Date(given);
  const cert = new X509Certificate(record.certificatePem);
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  return new Date(from + Math.floor(((to - from) * 2) / 3));
}

function bad(detail: string): FleetkeyError {
  return new FleetkeyError('INTERNAL', { detail: `renewal response: ${detail}` });
}

/**
 * Renews the operational certificate: a NEW key in the keystore (the server refuses the old one,
 * CERT_KEY_REUSED), its CSR, POST /device/v1/renew over mTLS with the current certificate, then
 * the new chain and record are written to the bundle and the old key destroyed. On any failure
 * the new key is deleted and the bundle is left as it was.
 *
 * @returns the new provisioned record (written to provisioned.json)
 * @throws ProvisioningRefusedError (CERT_RENEWAL_REFUSED...) | TransientProvisioningError | FleetkeyError
 */
export async function renewOperationalCertificate(
  bundle: LoadedBundle,
  record: ProvisionedRecord,
  keystore: Keystore,
  options: { now: () => Date; timeoutMs?: number },
): Promise<ProvisionedRecord> {
  const current = await operationalKey(keystore, record.operationalKeyLabel);
  const tlsKey = current.tlsKey();
  if (tlsKey === undefined) throw new FleetkeyError('CONFIG_INVALID', { detail: 'renewal needs mTLS with the operational key, which lives in a token' });
  const chainPem = await readFile(join(bundle.dir, BUNDLE_FILES.operationalChain), 'utf8');
  const label = await nextOperationalLabel(keystore, bundle.device.idevidKeyLabel);
  const fresh = await keystore.generateKey(label, current.curve);
  const keyPem = Buffer.from(tlsKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  const client = new DevicePlaneClient(record.gateway.deviceUrl, { ca: bundle.caBundlePem, cert: chainPem, key: keyPem }, options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs });
  let ok = false;
  try {
    const csr = toPem(await createCsr(fresh, { commonName: bundle.device.deviceId }), 'CERTIFICATE REQUEST');
    const raw = await client.post('/device/v1/renew', { csr });
    if (!matches(RenewAnswer, raw)) throw bad(schemaErrors(RenewAnswer, raw).join('; '));
    checkIssued(raw.certificatePem, raw.chainPem, fresh, bundle.caBundlePem, options.now());
    const next: ProvisionedRecord = {
      ...record,
      certificatePem: raw.certificatePem,
      chainPem: raw.chainPem,
      notAfter: raw.notAfter,
      renewAfter: raw.renewAfter,
      operationalKeyLabel: label,
    };
    await writeProvisioned(bundle, next);
    ok = true;
    // The superseded certificate keeps authenticating through the server's grace period only;
    // its key has no further use and must not outlive it on the device.
    if (current.label !== bundle.device.idevidKeyLabel) await keystore.deleteKey(current.label).catch(() => false);
    return next;
  } finally {
    client.close();
    zero(keyPem);
    if (!ok) await keystore.deleteKey(label).catch(() => false);
  }
}

/**
 * The renewed certificate must certify the key we just generated and chain to the CAs the
 * device already trusts: a renewal answer cannot introduce a new trust anchor.
 */
function checkIssued(certificatePem: string, chainPem: string, key: KeyHandle, trustPem: string, now: Date): void {
  let leaf: X509Certificate;
  let chain: X509Certificate[];
  try {
    leaf = new X509Certificate(certificatePem);
    chain = splitPemCertificates(chainPem).map((p) => new X509Certificate(p));
  } catch (cause) {
    throw new FleetkeyError('INTERNAL', { detail: 'renewal response: certificate does not parse', cause });
  }
  if (!leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(key.spkiDer)) throw bad('certificate is not for the key in the CSR');
  if (Date.parse(leaf.validTo) <= now.getTime()) throw bad('certificate already expired');
  const anchors = splitPemCertificates(trustPem).map((p) => new X509Certificate(p));
  const pool = [...anchors, ...chain.filter((c) => !c.raw.equals(leaf.raw))];
  // Signature walk, at most 4 links (same sanity check as verify-result.ts for provisioning).
  let cur = leaf;
  for (let depth = 0; depth < 4; depth++) {
    const issuer = pool.find((c) => c.ca && cur.checkIssued(c) && cur.verify(c.publicKey));
    if (issuer === undefined) break;
    if (anchors.some((a) => a.raw.equals(issuer.raw))) return;
    cur = issuer;
  }
  throw bad("certificate does not chain to the bundle's CAs");
}
