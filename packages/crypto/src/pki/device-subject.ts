import { oid, printableString, seq, set, tlv, utf8String } from './der.js';
import type { DeviceCertificateKind } from './device-profile.js';
import { OID } from './oids.js';

/**
 * Subject Name of a device certificate: CN = device id as UTF8String (RFC 5280 §4.1.2.6
 * prefers UTF8String), plus for an IDevID a serialNumber RDN (PrintableString, X.520 §6.2.9).
 */
export function deviceSubjectDer(deviceId: string, kind: DeviceCertificateKind): Buffer {
  const cn = set(seq(oid(OID.commonName), utf8String(deviceId)));
  return kind === 'idevid' ? seq(cn, set(seq(oid(OID.serialNumber), printableString(deviceId)))) : seq(cn);
}

/** SubjectAltName value: one URI `urn:uuid:<id>` (RFC 4122 §3 URN form, RFC 5280 §4.2.1.6). */
export const deviceSanValue = (deviceId: string): Buffer => seq(tlv(0x86, Buffer.from(`urn:uuid:${deviceId}`, 'latin1')));
