import { X509Certificate } from 'node:crypto';
import { FleetkeyError, ProvisioningResult } from '@fleetkey/protocol';
import type { KeyHandle } from '../keystore/keystore.js';
import { matches, schemaErrors } from './schema-check.js';

/** Every certificate block of a PEM text, in order. */
export function splitPemCertificates(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----/g) ?? [];
}

function bad(detail: string): FleetkeyError {
  return new FleetkeyError('INTERNAL', { detail: `provisioning response: ${detail}` });
}

/**
 * Checks the server's answer before the device relies on it: the schema, the device id, that
 * the certificate certifies *our new key* (a mix-up would leave the device with a certificate it
 * cannot use), and that it chains to the CAs the device already trusts (the bundle's), so a
 * response cannot smuggle in a new trust anchor through `caBundlePem`.
 */
export function verifyProvisioningResult(raw: unknown, expect: { deviceId: string; key: KeyHandle; trustPem: string }): ProvisioningResult {
  if (!matches(ProvisioningResult, raw)) throw bad(schemaErrors(ProvisioningResult, raw).join('; '));
  if (raw.deviceId !== expect.deviceId) throw bad('device id differs from the bundle');
  let leaf: X509Certificate;
  let chain: X509Certificate[];
  try {
    leaf = new X509Certificate(raw.certificatePem);
    chain = splitPemCertificates(raw.chainPem).map((p) => new X509Certificate(p));
  } catch (cause) {
    throw new FleetkeyError('INTERNAL', { detail: 'provisioning response: certificate does not parse', cause });
  }
  const spki = leaf.publicKey.export({ type: 'spki', format: 'der' });
  if (!spki.equals(expect.key.spkiDer)) throw bad('certificate is not for the key in the CSR');
  const anchors = splitPemCertificates(expect.trustPem).map((p) => new X509Certificate(p));
  const intermediates = chain.filter((c) => !c.raw.equals(leaf.raw));
  const now = Date.now();
  if (Date.parse(leaf.validFrom) > now + 5 * 60_000 || Date.parse(leaf.validTo) < now) throw bad('certificate is outside its validity period');
  if (!chainsTo(leaf, intermediates, anchors)) throw bad("certificate does not chain to the bundle's CAs");
  return raw;
}

/**
 * Signature walk from `leaf` to one of `anchors` through `intermediates` (at most 4 links).
 * A sanity check of an answer from a server already authenticated by TLS, not a full RFC 5280
 * path validation: the crypto package's validator cannot parse the UUID-arc OID of Fleetkey's
 * own issuance-method extension (2.25.<128-bit integer>, "OID arc too large").
 */
function chainsTo(leaf: X509Certificate, intermediates: readonly X509Certificate[], anchors: readonly X509Certificate[]): boolean {
  const isAnchor = (c: X509Certificate): boolean => anchors.some((a) => a.raw.equals(c.raw));
  let current = leaf;
  for (let depth = 0; depth < 4; depth++) {
    if (depth > 0 && isAnchor(current)) return true;
    const issuer = [...anchors, ...intermediates].find((c) => current.checkIssued(c) && current.verify(c.publicKey) && c.ca);
    if (issuer === undefined) return false;
    if (isAnchor(issuer)) return true;
    current = issuer;
  }
  return false;
}
