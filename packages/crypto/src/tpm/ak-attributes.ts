import { FleetkeyError } from '@fleetkey/protocol';
import { TPMA_OBJECT, type TpmaObjectBit, type TpmHashName } from './constants.js';
import type { TpmPublic } from './public-area.js';

/** How the AK signs, once checkAkAttributes accepts it (what a quote verifier needs). */
export interface AkSigningParameters {
  readonly scheme: 'rsassa' | 'rsapss' | 'ecdsa';
  readonly hash: TpmHashName;
}

/*
 * TCG EK Credential Profile / TPM 2.0 Part 1 §24: credential activation proves only that the AK
 * Name is loaded next to the EK. The AK attributes are what make that worth anything:
 * - fixedTPM + fixedParent: the key can never be duplicated out of this TPM;
 * - sensitiveDataOrigin: the TPM generated the private key (nobody imported a known one);
 * - restricted + sign: it only signs TPM-generated structures (quotes, certify), so it cannot
 *   be used to sign a forged TPMS_ATTEST that starts with TPM_GENERATED_VALUE;
 * - decrypt clear: a restricted key that also decrypts is a storage key, not an AK.
 * userWithAuth is deliberately not checked: it selects how the holder authorises use of the key
 * (password/HMAC vs. policy), which does not change what the key can sign.
 */
const MUST_SET: readonly TpmaObjectBit[] = ['fixedTPM', 'fixedParent', 'sensitiveDataOrigin', 'restricted', 'sign'];
const MUST_CLEAR: readonly TpmaObjectBit[] = ['decrypt'];

/**
 * Checks that a public area is usable as an attestation key: the object attributes above, a
 * name algorithm stronger than SHA-1, and a signing scheme we can verify (RSASSA / RSAPSS with
 * RSA >= 2048, ECDSA) with a hash stronger than SHA-1.
 *
 * @throws FleetkeyError TPM_AK_ATTRIBUTES (detail names the failing bit or parameter)
 */
export function checkAkAttributes(pub: TpmPublic): AkSigningParameters {
  const fail = (detail: string): never => {
    throw new FleetkeyError('TPM_AK_ATTRIBUTES', { detail });
  };
  for (const bit of MUST_SET) {
    if ((pub.objectAttributes & TPMA_OBJECT[bit]) === 0) fail(`${bit} is clear`);
  }
  for (const bit of MUST_CLEAR) {
    if ((pub.objectAttributes & TPMA_OBJECT[bit]) !== 0) fail(`${bit} is set`);
  }
  // A SHA-1 Name would let a second key with a colliding TPMT_PUBLIC stand in for the AK.
  if (pub.nameAlg === 'sha1') fail('nameAlg is sha1');
  // Part 2 §12.2.3.6: a signing key carries no symmetric definition.
  if (pub.symmetric !== null) fail('symmetric is not TPM_ALG_NULL');
  const scheme = pub.scheme;
  if (scheme === null || scheme.hashAlg === undefined) return fail('scheme is TPM_ALG_NULL');
  if (scheme.hashAlg === 'sha1') fail('scheme hash is sha1');
  if (pub.type === 'rsa') {
    if (pub.keyBits < 2048) fail(`RSA keyBits ${pub.keyBits} < 2048`);
    if (scheme.scheme !== 'rsassa' && scheme.scheme !== 'rsapss') fail(`scheme ${scheme.scheme} is not a signing scheme`);
    return { scheme: scheme.scheme === 'rsassa' ? 'rsassa' : 'rsapss', hash: scheme.hashAlg };
  }
  if (scheme.scheme !== 'ecdsa') fail(`scheme ${scheme.scheme} is not ECDSA`);
  return { scheme: 'ecdsa', hash: scheme.hashAlg };
}
