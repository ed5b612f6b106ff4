import { constants, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { children, decodeOid, DerError, readSingle, smallUint, TAG, type Tlv } from './der.js';
import { OID } from './oids.js';
import { fail, type Failure } from './types.js';

type Hash = 'sha256' | 'sha384' | 'sha512';

export type SignatureAlgorithm =
  | { readonly kind: 'rsa-pkcs1'; readonly hash: Hash }
  | { readonly kind: 'rsa-pss'; readonly hash: Hash; readonly saltLength: number }
  | { readonly kind: 'ecdsa'; readonly hash: Hash }
  | { readonly kind: 'eddsa'; readonly curve: 'ed25519' | 'ed448' };

const HASH_BY_OID: Readonly<Record<string, Hash>> = {
  [OID.sha256]: 'sha256',
  [OID.sha384]: 'sha384',
  [OID.sha512]: 'sha512',
};

const RSA_PKCS1: Readonly<Record<string, Hash>> = {
  [OID.sha256WithRSA]: 'sha256',
  [OID.sha384WithRSA]: 'sha384',
  [OID.sha512WithRSA]: 'sha512',
};

const ECDSA: Readonly<Record<string, Hash>> = {
  [OID.ecdsaWithSha256]: 'sha256',
  [OID.ecdsaWithSha384]: 'sha384',
  [OID.ecdsaWithSha512]: 'sha512',
};

/** Named curves accepted for certificate keys (NIST P-256/384/521; P-192 and others refused). */
const CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1']);
const MIN_RSA_BITS = 2048;
const MAX_RSA_BITS = 16384;

/** A hash AlgorithmIdentifier whose parameters are NULL or absent (RFC 4055 §2.1). */
function hashAlg(tlv: Tlv | undefined): Hash | undefined {
  if (!tlv || tlv.tag !== TAG.SEQUENCE) return undefined;
  const [oid, params, extra] = children(tlv);
  if (!oid || extra || (params && !(params.tag === TAG.NULL && params.value.length === 0))) return undefined;
  return HASH_BY_OID[decodeOid(oid)];
}

// RFC 4055 §3.1: RSASSA-PSS-params; we accept SHA-2 hashes with MGF1 over the same hash.
function parsePssParams(params: Tlv | undefined): SignatureAlgorithm | Failure {
  if (!params || params.tag !== TAG.SEQUENCE) return fail('unsupported_algorithm', 'RSASSA-PSS without parameters (SHA-1 default)');
  let hash: Hash | undefined;
  let mgfHash: Hash | undefined;
  let saltLength = 20;
  for (const field of children(params)) {
    const [inner, extra] = children(field);
    if (!inner || extra) throw new DerError('bad RSASSA-PSS-params');
    if (field.tag === 0xa0) hash = hashAlg(inner);
    else if (field.tag === 0xa1) {
      const [mgfOid, mgfParams] = inner.tag === TAG.SEQUENCE ? children(inner) : [];
      if (mgfOid && decodeOid(mgfOid) === OID.mgf1) mgfHash = hashAlg(mgfParams);
    } else if (field.tag === 0xa2) saltLength = smallUint(inner);
    else if (field.tag === 0xa3) {
      if (smallUint(inner) !== 1) return fail('unsupported_algorithm', 'RSASSA-PSS trailerField is not 1');
    } else throw new DerError('bad RSASSA-PSS-params');
  }
  if (!hash || hash !== mgfHash) return fail('unsupported_algorithm', 'RSASSA-PSS with unsupported hash or MGF');
  return { kind: 'rsa-pss', hash, saltLength };
}

/** Maps a certificate's signatureAlgorithm to what we verify with, or refuses it. */
export function parseSignatureAlgorithm(raw: Buffer): SignatureAlgorithm | Failure {
  const seq = readSingle(raw, TAG.SEQUENCE);
  const [oidTlv, params, extra] = children(seq);
  if (!oidTlv || extra) throw new DerError('bad AlgorithmIdentifier');
  const oid = decodeOid(oidTlv);
  const rsa = RSA_PKCS1[oid];
  if (rsa) {
    // RFC 4055 §5: parameters MUST be NULL; absent parameters are tolerated as many stacks do.
    if (params && !(params.tag === TAG.NULL && params.value.length === 0)) throw new DerError('RSA parameters not NULL');
    return { kind: 'rsa-pkcs1', hash: rsa };
  }
  const ec = ECDSA[oid];
  if (ec) {
    // RFC 5758 §3.2: the parameters field MUST be absent.
    if (params) throw new DerError('ECDSA parameters present');
    return { kind: 'ecdsa', hash: ec };
  }
  if (oid === OID.ed25519 || oid === OID.ed448) {
    if (params) throw new DerError('EdDSA parameters present'); // RFC 8410 §3
    return { kind: 'eddsa', curve: oid === OID.ed25519 ? 'ed25519' : 'ed448' };
  }
  if (oid === OID.rsassaPss) return parsePssParams(params);
  return fail('unsupported_algorithm', `signature algorithm ${oid} not accepted`);
}

/** Parses the SPKI and refuses key types and sizes we do not accept anywhere in a chain. */
export function parsePublicKey(spki: Buffer): KeyObject | Failure {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch {
    return fail('unsupported_algorithm', 'subjectPublicKeyInfo not parseable or unsupported');
  }
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss': {
      const bits = details.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS || bits > MAX_RSA_BITS) return fail('weak_key', `RSA modulus of ${bits} bits`);
      return key;
    }
    case 'ec':
      if (!CURVES.has(details.namedCurve ?? '')) return fail('weak_key', `EC curve ${details.namedCurve ?? 'unknown'}`);
      return key;
    case 'ed25519':
    case 'ed448':
      return key;
    default:
      return fail('unsupported_algorithm', `public key type ${key.asymmetricKeyType ?? 'unknown'}`);
  }
}

function keyMatches(alg: SignatureAlgorithm, key: KeyObject): boolean {
  const t = key.asymmetricKeyType;
  switch (alg.kind) {
    case 'rsa-pkcs1':
      return t === 'rsa';
    case 'rsa-pss':
      return t === 'rsa' || t === 'rsa-pss';
    case 'ecdsa':
      return t === 'ec';
    case 'eddsa':
      return t === alg.curve;
  }
}

/** Verifies `signature` over `tbs` with the issuer key; the algorithm must suit the key. */
export function verifySignature(alg: SignatureAlgorithm, key: KeyObject, tbs: Buffer, signature: Buffer): Failure | null {
  if (!keyMatches(alg, key)) return fail('bad_signature', `${alg.kind} signature with a ${key.asymmetricKeyType ?? '?'} issuer key`);
  let ok = false;
  try {
    switch (alg.kind) {
      case 'rsa-pkcs1':
        ok = verify(alg.hash, tbs, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
        break;
      case 'rsa-pss':
        ok = verify(alg.hash, tbs, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: alg.saltLength }, signature);
        break;
      case 'ecdsa':
        ok = verify(alg.hash, tbs, { key, dsaEncoding: 'der' }, signature);
        break;
      case 'eddsa':
        ok = verify(null, tbs, key, signature);
        break;
    }
  } catch {
    ok = false;
  }
  return ok ? null : fail('bad_signature', 'signature does not verify with the issuer key');
}
