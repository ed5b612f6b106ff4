import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import { Name } from './x509-lib.js';
import { DerError, children, decodeOid, readExactly, type DerNode } from './der.js';
import { OID } from './oids.js';
import { fromPem, looksLikePem } from './pem.js';

export type CsrKeyType = 'p256' | 'p384' | 'ed25519' | 'rsa';

export interface CsrPolicy {
  /** Accept Ed25519 keys (default false). */
  readonly allowEd25519?: boolean;
  /** Accept RSA keys of at least `minRsaBits` (default false). */
  readonly allowRsa?: boolean;
  /** Minimum RSA modulus size; never below 2048 (default 2048). */
  readonly minRsaBits?: number;
  /** Input size limit in bytes, checked before anything is parsed (default 8192). */
  readonly maxBytes?: number;
}

export interface VerifiedCsr {
  readonly publicKey: KeyObject;
  /** The SubjectPublicKeyInfo exactly as the device sent it. */
  readonly spkiDer: Buffer;
  readonly keyType: CsrKeyType;
  /** RFC 4514 string of the requested subject: informational only, our profile never copies it. */
  readonly subject: string;
  readonly subjectDer: Buffer;
  /** Dotted OID of the algorithm the CSR was signed with. */
  readonly signatureAlgorithm: string;
  /** The whole request, DER. */
  readonly der: Buffer;
}

export const DEFAULT_CSR_MAX_BYTES = 8192;

/** Signature algorithms accepted on a CSR, with the hash Node must use and the key family. */
const SIG_ALGS: Readonly<Record<string, { hash: string | null; family: 'ec' | 'ed25519' | 'rsa' }>> = {
  [OID.ecdsaWithSha256]: { hash: 'sha256', family: 'ec' },
  [OID.ecdsaWithSha384]: { hash: 'sha384', family: 'ec' },
  [OID.ecdsaWithSha512]: { hash: 'sha512', family: 'ec' },
  [OID.ed25519]: { hash: null, family: 'ed25519' },
  [OID.sha256WithRsa]: { hash: 'sha256', family: 'rsa' },
  [OID.sha384WithRsa]: { hash: 'sha384', family: 'rsa' },
  [OID.sha512WithRsa]: { hash: 'sha512', family: 'rsa' },
};

const fail = (code: 'CSR_MALFORMED' | 'CSR_SIGNATURE_INVALID' | 'CSR_KEY_NOT_ALLOWED' | 'CSR_KEY_TOO_SHORT' | 'CSR_SIGNATURE_ALGORITHM_NOT_ALLOWED', detail: string, cause?: unknown): never => {
  throw new FleetkeyError(code, cause === undefined ? { detail } : { detail, cause });
};

interface CsrParts {
  readonly infoRaw: Buffer;
  readonly subject: DerNode;
  readonly spki: DerNode;
  readonly sigAlgOid: string;
  readonly sigAlgParams: DerNode | undefined;
  readonly signature: Buffer;
}

/** RFC 2986 §4 framing, read with DER rules so the signed bytes are exactly what was signed. */
function splitCsr(der: Buffer): CsrParts {
  try {
    const [info, alg, sig, ...extra] = children(readExactly(der, 0x30));
    if (info?.tag !== 0x30 || alg?.tag !== 0x30 || sig?.tag !== 0x03 || extra.length > 0) throw new DerError('CertificationRequest shape');
    const [version, subject, spki, attributes, ...more] = children(info);
    if (version?.tag !== 0x02 || version.value.length !== 1 || version.value[0] !== 0) throw new DerError('version must be v1 (0)');
    if (subject?.tag !== 0x30 || spki?.tag !== 0x30 || attributes?.tag !== 0xa0 || more.length > 0) throw new DerError('CertificationRequestInfo shape');
    children(attributes); // attributes must at least be well-formed TLVs
    const [algId, algParams, ...algExtra] = children(alg);
    if (algId?.tag !== 0x06 || algExtra.length > 0) throw new DerError('AlgorithmIdentifier shape');
    if (sig.value[0] !== 0 || sig.value.length < 2) throw new DerError('signature BIT STRING has unused bits');
    return { infoRaw: info.raw, subject, spki, sigAlgOid: decodeOid(algId.value), sigAlgParams: algParams, signature: sig.value.subarray(1) };
  } catch (e) {
    return fail('CSR_MALFORMED', `CSR structure: ${(e as Error).message}`, e);
  }
}

function classifyKey(key: KeyObject, policy: CsrPolicy): CsrKeyType {
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return 'p256';
      if (curve === 'secp384r1') return 'p384';
      return fail('CSR_KEY_NOT_ALLOWED', `EC curve ${String(curve)} not allowed`);
    }
    case 'ed25519':
      if (policy.allowEd25519 === true) return 'ed25519';
      return fail('CSR_KEY_NOT_ALLOWED', 'Ed25519 not allowed by policy');
    case 'rsa': {
      if (policy.allowRsa !== true) return fail('CSR_KEY_NOT_ALLOWED', 'RSA not allowed by policy');
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      const min = Math.max(2048, policy.minRsaBits ?? 2048);
      if (bits < min) return fail('CSR_KEY_TOO_SHORT', `RSA modulus ${bits} bits < ${min}`);
      return 'rsa';
    }
    default:
      return fail('CSR_KEY_NOT_ALLOWED', `key type ${String(key.asymmetricKeyType)} not allowed`);
  }
}

/**
 * Parses a PKCS#10 request (DER or PEM) and checks it the way a CA must before trusting
 * anything in it: size first, then strict DER framing, key type against `policy`, and the
 * self-signature (proof of possession, RFC 2986 §3). The subject and attributes are returned
 * for information only: the certificate profile is ours, never the CSR's.
 *
 * @throws FleetkeyError CSR_TOO_LARGE | CSR_MALFORMED | CSR_SIGNATURE_ALGORITHM_NOT_ALLOWED |
 *   CSR_KEY_NOT_ALLOWED | CSR_KEY_TOO_SHORT | CSR_SIGNATURE_INVALID
 */
export function parseAndVerifyCsr(input: Buffer | string, policy: CsrPolicy = {}): VerifiedCsr {
  const maxBytes = policy.maxBytes ?? DEFAULT_CSR_MAX_BYTES;
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  if (size > maxBytes) throw new FleetkeyError('CSR_TOO_LARGE', { detail: `${size} bytes > ${maxBytes}` });
  if (size === 0) return fail('CSR_MALFORMED', 'empty input');

  const der = looksLikePem(input)
    ? fromPem(input.toString(), ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'], 'CSR_MALFORMED')
    : typeof input === 'string'
      ? fail('CSR_MALFORMED', 'string input must be PEM')
      : input;
  const parts = splitCsr(der);

  const alg = SIG_ALGS[parts.sigAlgOid];
  if (alg === undefined) return fail('CSR_SIGNATURE_ALGORITHM_NOT_ALLOWED', `signature algorithm ${parts.sigAlgOid}`);
  // ECDSA and Ed25519 identifiers have absent parameters (RFC 5758 §3.2, RFC 8410 §3); RSA PKCS#1 v1.5 has NULL.
  const paramsOk = alg.family === 'rsa' ? parts.sigAlgParams === undefined || (parts.sigAlgParams.tag === 0x05 && parts.sigAlgParams.value.length === 0) : parts.sigAlgParams === undefined;
  if (!paramsOk) return fail('CSR_MALFORMED', 'signature algorithm parameters');

  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: parts.spki.raw, format: 'der', type: 'spki' });
  } catch (e) {
    return fail('CSR_MALFORMED', 'SubjectPublicKeyInfo does not parse', e);
  }
  const keyType = classifyKey(publicKey, policy);
  const family = keyType === 'p256' || keyType === 'p384' ? 'ec' : keyType;
  if (family !== alg.family) return fail('CSR_SIGNATURE_INVALID', 'signature algorithm does not match key type');

  let ok = false;
  try {
    ok = verify(alg.hash, parts.infoRaw, publicKey, parts.signature);
  } catch (e) {
    return fail('CSR_SIGNATURE_INVALID', 'signature does not decode', e);
  }
  if (!ok) return fail('CSR_SIGNATURE_INVALID', 'proof of possession failed');

  let subject: string;
  try {
    subject = new Name(parts.subject.raw).toString();
  } catch (e) {
    return fail('CSR_MALFORMED', 'subject Name does not parse', e);
  }
  return {
    publicKey,
    spkiDer: Buffer.from(parts.spki.raw),
    keyType,
    subject,
    subjectDer: Buffer.from(parts.subject.raw),
    signatureAlgorithm: parts.sigAlgOid,
    der: Buffer.from(der),
  };
}
