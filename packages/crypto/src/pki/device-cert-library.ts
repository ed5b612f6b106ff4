import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import * as asn1X509 from '@peculiar/asn1-x509';
import { FleetkeyError } from '@fleetkey/protocol';
import * as x509 from './x509-lib.js';
import { checkDeviceRequest, randomSerial, type DeviceCertificateRequest, type IssuedCertificate } from './device-profile.js';
import { utf8String } from './der.js';
import { sha256Hex } from './hash.js';
import type { IssuerTemplate } from './issuer-template.js';
import { OID, OID_FLEETKEY_ISSUANCE_METHOD } from './oids.js';

const SIG_OID = { ES256: OID.ecdsaWithSha256, ES384: OID.ecdsaWithSha384 } as const;

/**
 * The reference implementation of the device profile on the @peculiar stack (x509's extension
 * classes, asn1-x509 structures, asn1-schema's encoder): same inputs, same extensions, order
 * and criticality as issueDeviceCertificate. Kept as the yardstick the fast path is tested
 * against, and for callers that prefer the library.
 *
 * Not X509CertificateGenerator itself: the generator re-parses every extension, and asn1js
 * turns an OID arc above 2^53 (the legacy 2.25.<UUID> arc) into a "{hex}" string on parse that
 * it then cannot encode. Building the TBSCertificate from asn1-x509 classes encodes the OID from
 * our dotted string, whatever its arcs.
 *
 * @throws FleetkeyError CERT_PROFILE_INVALID | CERT_VALIDITY_INVALID | CERT_SIGNING_FAILED
 */
export async function issueDeviceCertificateWithLibrary(template: IssuerTemplate, req: DeviceCertificateRequest): Promise<IssuedCertificate> {
  const { notBefore, notAfter, ski } = checkDeviceRequest(req, template.issuer.notAfter);
  const subject: x509.JsonNameParams = [{ [OID.commonName]: [{ utf8String: req.deviceId }] }];
  if (req.kind === 'idevid') subject.push({ [OID.serialNumber]: [{ printableString: req.deviceId }] });
  const aia: x509.AuthorityInfoAccessParams =
    template.caIssuersUrl === undefined ? { ocsp: [template.ocspUrl] } : { ocsp: [template.ocspUrl], caIssuers: [template.caIssuersUrl] };
  const algorithm = new asn1X509.AlgorithmIdentifier({ algorithm: SIG_OID[template.signer.algorithm] }); // no parameters, RFC 5758 §3.2
  const extensions = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([OID.kpClientAuth], false),
    new x509.AuthorityKeyIdentifierExtension(template.issuer.keyId.toString('hex'), false),
    new x509.CRLDistributionPointsExtension([template.crlUrl], false),
    new x509.AuthorityInfoAccessExtension(aia, false),
    new x509.SubjectKeyIdentifierExtension(ski.toString('hex'), false),
    new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `urn:uuid:${req.deviceId}` }], false),
  ].map((e) => AsnConvert.parse(e.rawData, asn1X509.Extension));
  extensions.push(new asn1X509.Extension({ extnID: OID_FLEETKEY_ISSUANCE_METHOD, critical: false, extnValue: new OctetString(utf8String(req.method)) }));
  const serial = randomSerial();
  const tbsCertificate = new asn1X509.TBSCertificate({
    version: asn1X509.Version.v3,
    serialNumber: serial.buffer.slice(serial.byteOffset, serial.byteOffset + serial.length) as ArrayBuffer,
    signature: algorithm,
    issuer: AsnConvert.parse(template.issuer.subjectDer, asn1X509.Name),
    validity: new asn1X509.Validity({ notBefore, notAfter }),
    subject: AsnConvert.parse(new x509.Name(subject).toArrayBuffer(), asn1X509.Name),
    subjectPublicKeyInfo: AsnConvert.parse(req.spkiDer, asn1X509.SubjectPublicKeyInfo),
    extensions: new asn1X509.Extensions(extensions),
  });
  const tbs = Buffer.from(AsnConvert.serialize(tbsCertificate));
  let signature: Buffer;
  try {
    signature = await template.signer.sign(tbs);
  } catch (e) {
    throw new FleetkeyError('CERT_SIGNING_FAILED', { detail: 'signer refused the TBSCertificate', cause: e });
  }
  const certificate = new asn1X509.Certificate({ tbsCertificate, signatureAlgorithm: algorithm, signatureValue: new Uint8Array(signature).buffer });
  const der = Buffer.from(AsnConvert.serialize(certificate));
  return { der, serialHex: serial.toString('hex'), fingerprintSha256: sha256Hex(der) };
}
