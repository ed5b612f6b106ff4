import { X509Certificate } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import { parseTpm2bPublic, type TpmPublic } from './public-area.js';
import { tpmPublicToKeyObject } from './public-key.js';
import { validateChain, type CertInput, type ValidationResult } from '../x509/validate/index.js';

/** TCG EK Credential Profile (low-range NV indices): where a TPM keeps its EK certificates. */
export const EK_CERT_NV_INDEX = {
  rsa2048: 0x01c00002,
  eccP256: 0x01c0000a,
  eccP384: 0x01c00016,
} as const;

/** Bounds the work on hostile input; real EK certificates are 0.8–2 KiB. */
const MAX_EK_CERT_BYTES = 8192;

/**
 * Extracts the DER certificate from the contents of an EK certificate NV index. Some TPMs size
 * the index larger than the certificate and pad with 0x00 or 0xFF (unwritten flash); anything
 * after the DER SEQUENCE other than such padding is refused.
 *
 * @throws FleetkeyError TPM_EK_CERT_MALFORMED
 */
export function ekCertificateFromNv(nv: Uint8Array): Buffer {
  const fail = (detail: string): never => {
    throw new FleetkeyError('TPM_EK_CERT_MALFORMED', { detail });
  };
  const b = Buffer.from(nv);
  if (b.length > MAX_EK_CERT_BYTES) fail(`NV contents ${b.length} bytes exceed ${MAX_EK_CERT_BYTES}`);
  // X.690 §8.1: a certificate is a SEQUENCE (0x30) with a definite length.
  if (b.length < 2 || b[0] !== 0x30) fail('not a DER SEQUENCE');
  const first = b[1]!;
  let len: number;
  let header: number;
  if (first < 0x80) {
    len = first;
    header = 2;
  } else {
    const n = first & 0x7f;
    if (n === 0 || n > 2 || b.length < 2 + n) fail('unsupported DER length');
    len = n === 1 ? b[2]! : b.readUInt16BE(2);
    header = 2 + n;
  }
  const end = header + len;
  if (end > b.length) fail(`DER length ${len} runs past the ${b.length}-byte NV contents`);
  const pad = b.subarray(end);
  const padByte = pad[0];
  if (padByte !== undefined && ((padByte !== 0x00 && padByte !== 0xff) || pad.some((x) => x !== padByte))) {
    fail('unexpected bytes after the certificate');
  }
  return Buffer.from(b.subarray(0, end));
}

export interface VerifyEkCertificateInput {
  /** The DER EK certificate (see ekCertificateFromNv). */
  readonly ekCertDer: Uint8Array;
  /** The EK the device presented: parsed, or TPM2B_PUBLIC bytes. */
  readonly ekPublic: TpmPublic | Uint8Array;
  /** TPM manufacturer roots (trust anchors). */
  readonly roots: readonly X509Certificate[];
  /** Untrusted intermediates the device or the manufacturer supplied. */
  readonly intermediates?: readonly X509Certificate[];
  /** Validation time; defaults to now. */
  readonly time?: Date;
}

export interface VerifiedEkCertificate {
  readonly certificate: X509Certificate;
  /** From the EK certificate's issuer up to and including the root. */
  readonly chain: readonly X509Certificate[];
}

export interface EkChainInput {
  /** The EK certificate, DER (or one PEM block). */
  readonly ekCertDer: Uint8Array;
  readonly roots: readonly CertInput[];
  readonly intermediates?: readonly CertInput[];
  readonly time?: Date;
}

/**
 * The chain half of {@link verifyEkCertificate}: the one path validator (`x509/validate`) under
 * the `tcg-ek` profile, so an EK certificate gets every RFC 5280 check an IDevID gets (signatures,
 * validity, pathLen, name constraints, policies, unknown critical extensions, weak keys and
 * SHA-1) plus the TCG EK Credential Profile.
 */
export function validateEkChain(input: EkChainInput): ValidationResult {
  return validateChain({
    leaf: Buffer.from(input.ekCertDer),
    intermediates: input.intermediates ?? [],
    trustAnchors: input.roots,
    time: input.time ?? new Date(),
    profile: 'tcg-ek',
  });
}

/**
 * Checks that an EK certificate certifies exactly `ekPublic` and that the path validator accepts
 * it under the TCG EK profile up to one of `roots` ({@link validateEkChain}).
 *
 * @throws FleetkeyError TPM_EK_CERT_MALFORMED, TPM_EK_CERT_MISMATCH, TPM_EK_UNTRUSTED,
 *   TPM_PUBLIC_MALFORMED
 */
export function verifyEkCertificate(input: VerifyEkCertificateInput): VerifiedEkCertificate {
  if (input.ekCertDer.length > MAX_EK_CERT_BYTES) {
    throw new FleetkeyError('TPM_EK_CERT_MALFORMED', { detail: `certificate ${input.ekCertDer.length} bytes exceeds ${MAX_EK_CERT_BYTES}` });
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(Buffer.from(input.ekCertDer));
  } catch (cause) {
    throw new FleetkeyError('TPM_EK_CERT_MALFORMED', { detail: `not an X.509 certificate: ${String(cause)}`, cause });
  }
  if (!Buffer.from(cert.raw).equals(Buffer.from(input.ekCertDer))) {
    // Node accepts PEM too and ignores what follows the DER; we want exactly one DER certificate.
    throw new FleetkeyError('TPM_EK_CERT_MALFORMED', { detail: 'input is not exactly one DER certificate' });
  }

  const ek = input.ekPublic instanceof Uint8Array ? parseTpm2bPublic(input.ekPublic) : input.ekPublic;
  if (!cert.publicKey.equals(tpmPublicToKeyObject(ek))) {
    throw new FleetkeyError('TPM_EK_CERT_MISMATCH', { detail: `certificate ${cert.serialNumber} certifies a different key` });
  }

  const r = validateEkChain(input);
  if (!r.ok) throw new FleetkeyError('TPM_EK_UNTRUSTED', { detail: `EK certificate refused by the path validator: ${r.reason}: ${r.detail}` });
  return { certificate: cert, chain: r.chain.slice(1) };
}
