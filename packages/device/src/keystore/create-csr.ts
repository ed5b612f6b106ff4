import { verify } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Attributes, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { AttributeTypeAndValue, AttributeValue, Name, RelativeDistinguishedName, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { FleetkeyError } from '@fleetkey/protocol';
import type { SignatureAlgorithm } from '@fleetkey/crypto';
import type { KeyHandle } from './keystore.js';

export interface CsrOptions {
  /** Subject CN, 1..64 characters (RFC 5280 Appendix A ub-common-name). The CA's profile decides the certificate's subject; this is informational. */
  commonName: string;
}

const OID_COMMON_NAME = '2.5.4.3';
// RFC 5758 §3.2: ECDSA signature identifiers carry no parameters.
const SIG_ALG: Record<SignatureAlgorithm, { oid: string; hash: string }> = {
  ES256: { oid: '1.2.840.10045.4.3.2', hash: 'sha256' },
  ES384: { oid: '1.2.840.10045.4.3.3', hash: 'sha384' },
};

/** X.690 §8.1.3 definite length, shortest form (DER §10.1). */
function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n < 0x100) return Buffer.from([0x81, n]);
  return Buffer.from([0x82, n >> 8, n & 0xff]);
}

const tlv = (tag: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);

/** DER OBJECT IDENTIFIER for the two fixed signature OIDs above (X.690 §8.19). */
function derOid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const bytes: number[] = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const chunk = [arc & 0x7f];
    for (let rest = Math.floor(arc / 128); rest > 0; rest = Math.floor(rest / 128)) chunk.unshift((rest & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

function checkCommonName(cn: unknown): asserts cn is string {
  if (typeof cn !== 'string' || cn.length === 0 || cn.length > 64 || /[\u0000-\u001f\u007f]/.test(cn)) {
    throw new RangeError('commonName must be 1..64 printable characters');
  }
}

/**
 * Builds a PKCS#10 certification request (RFC 2986) for `key`, signed *through* the key handle:
 * the private key is never needed here, so the same call works for a file key and for a key
 * inside a TPM or HSM. The signature is checked against the key's public half before the CSR
 * is returned, so a token answering with a wrong signature is caught on the device, not by the CA.
 *
 * @returns the DER CertificationRequest (wrap with `toPem(der, 'CERTIFICATE REQUEST')` for PEM)
 * @throws FleetkeyError CSR_SIGNATURE_INVALID when the key's signature does not verify;
 *   whatever `key.sign` throws (PKCS11_OPERATION_FAILED...)
 * @example const der = await createCsr(await keystore.generateKey('operational', 'P-256'), { commonName: deviceId })
 */
export async function createCsr(key: KeyHandle, options: CsrOptions): Promise<Buffer> {
  checkCommonName(options.commonName);
  const alg = SIG_ALG[key.algorithm];
  if (alg === undefined) throw new RangeError(`unsupported key algorithm ${String(key.algorithm)}`);

  // RFC 5280 §4.1.2.4 recommends UTF8String for DirectoryString values.
  const subject = new Name([
    new RelativeDistinguishedName([
      new AttributeTypeAndValue({ type: OID_COMMON_NAME, value: new AttributeValue({ utf8String: options.commonName }) }),
    ]),
  ]);
  const info = new CertificationRequestInfo({
    version: 0, // RFC 2986 §4.1 v1(0)
    subject,
    subjectPKInfo: AsnConvert.parse(key.spkiDer, SubjectPublicKeyInfo),
    // RFC 2986 §4.1: attributes is not OPTIONAL; an empty [0] SET (A0 00) is what OpenSSL writes.
    attributes: new Attributes(),
  });
  const infoDer = Buffer.from(AsnConvert.serialize(info));

  const signature = await key.sign(infoDer);
  if (!verify(alg.hash, infoDer, key.publicKey, signature)) {
    throw new FleetkeyError('CSR_SIGNATURE_INVALID', { detail: `key ${key.label} produced a signature that does not verify` });
  }
  // RFC 2986 §4.2: CertificationRequest ::= SEQUENCE { info, signatureAlgorithm, BIT STRING }.
  // Assembled by hand so the bytes embedded are exactly the bytes that were signed.
  const algorithmId = tlv(0x30, derOid(alg.oid));
  const bitString = tlv(0x03, Buffer.concat([Buffer.from([0]), signature]));
  return tlv(0x30, Buffer.concat([infoDer, algorithmId, bitString]));
}
