import { FleetkeyError } from '@fleetkey/protocol';
import { bitString, octetString, seq, tlv, utf8String, x509Time } from './der.js';
import { checkDeviceRequest, randomSerial, type DeviceCertificateRequest, type IssuedCertificate } from './device-profile.js';
import { deviceSanValue, deviceSubjectDer } from './device-subject.js';
import { sha256Hex } from './hash.js';
import { extension, type IssuerTemplate } from './issuer-template.js';
import { OID, OID_FLEETKEY_ISSUANCE_METHOD } from './oids.js';

/**
 * Issues a device certificate (operational LDevID or IDevID) by writing the TBSCertificate DER
 * straight from the issuer template: only serial, validity, subject, key, SKI, SAN and the
 * method extension vary. Produces the same profile as issueDeviceCertificateWithLibrary (a
 * test holds both to it); this one is about two orders of magnitude faster (bench/ca), which bulk
 * manufacturing and renewal storms need.
 *
 * The spkiDer must come from a CSR that parseAndVerifyCsr accepted; here it is only checked
 * to be a well-formed SubjectPublicKeyInfo (its key bits feed the SKI).
 *
 * @throws FleetkeyError CERT_PROFILE_INVALID | CERT_VALIDITY_INVALID | CERT_SIGNING_FAILED
 */
export async function issueDeviceCertificate(template: IssuerTemplate, req: DeviceCertificateRequest): Promise<IssuedCertificate> {
  const { notBefore, notAfter, ski } = checkDeviceRequest(req, template.issuer.notAfter);
  const serial = randomSerial();
  // RFC 5280 §4.1: TBSCertificate field order; extensions in the profile order of the template.
  const tbs = seq(
    template.versionDer,
    tlv(0x02, serial),
    template.algAndIssuerDer,
    seq(x509Time(notBefore), x509Time(notAfter)),
    deviceSubjectDer(req.deviceId, req.kind),
    req.spkiDer,
    tlv(
      0xa3,
      seq(
        template.fixedExtensionsDer,
        extension(OID.subjectKeyIdentifier, false, octetString(ski)),
        extension(OID.subjectAltName, false, deviceSanValue(req.deviceId)),
        extension(OID_FLEETKEY_ISSUANCE_METHOD, false, utf8String(req.method)),
      ),
    ),
  );
  let signature: Buffer;
  try {
    signature = await template.signer.sign(tbs);
  } catch (e) {
    throw new FleetkeyError('CERT_SIGNING_FAILED', { detail: 'signer refused the TBSCertificate', cause: e });
  }
  const der = seq(tbs, template.signatureAlgorithmDer, bitString(signature));
  return { der, serialHex: serial.toString('hex'), fingerprintSha256: sha256Hex(der) };
}
