import { createPublicKey, type KeyObject } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';

export type EcCurve = 'P-256' | 'P-384';

interface CurveInfo {
  /** DER of the namedCurve OID, the CKA_EC_PARAMS value (PKCS#11 v2.40 curr. mech. §2.3.3). */
  params: Buffer;
  /** Field size in bytes: r and s, x and y are each this long. */
  size: number;
  hash: 'sha256' | 'sha384';
  algorithm: 'ES256' | 'ES384';
}

export const CURVES: Record<EcCurve, CurveInfo> = {
  // 1.2.840.10045.3.1.7 prime256v1 (RFC 5480 §2.1.1.1)
  'P-256': { params: Buffer.from('06082a8648ce3d030107', 'hex'), size: 32, hash: 'sha256', algorithm: 'ES256' },
  // 1.3.132.0.34 secp384r1
  'P-384': { params: Buffer.from('06052b81040022', 'hex'), size: 48, hash: 'sha384', algorithm: 'ES384' },
};

export function curveFromParams(params: Buffer): EcCurve {
  for (const [name, info] of Object.entries(CURVES) as Array<[EcCurve, CurveInfo]>) {
    if (info.params.equals(params)) return name;
  }
  // Explicit curve parameters or an unsupported named curve: we only trust the named forms.
  throw new FleetkeyError('PKCS11_KEY_UNSUPPORTED', { detail: `CKA_EC_PARAMS ${params.toString('hex')}` });
}

/**
 * The uncompressed point from CKA_EC_POINT. PKCS#11 says the value is the DER encoding of an
 * ECPoint OCTET STRING (X9.62), which SoftHSM and tpm2-pkcs11 follow; some libraries return
 * the bare point. Both are accepted, decided by exact length, nothing else.
 */
export function unwrapEcPoint(value: Buffer, curve: EcCurve): Buffer {
  const rawLen = 1 + 2 * CURVES[curve].size;
  if (value.length === rawLen + 2 && value[0] === 0x04 && value[1] === rawLen) return value.subarray(2);
  if (value.length === rawLen + 3 && value[0] === 0x04 && value[1] === 0x81 && value[2] === rawLen) return value.subarray(3);
  if (value.length === rawLen && value[0] === 0x04) return value;
  throw new FleetkeyError('PKCS11_KEY_UNSUPPORTED', { detail: `CKA_EC_POINT of ${value.length} bytes is not an uncompressed ${curve} point` });
}

/** Builds the public KeyObject; Node refuses a point that is not on the curve. */
export function ecPublicKeyFromPoint(point: Buffer, curve: EcCurve): KeyObject {
  const size = CURVES[curve].size;
  try {
    return createPublicKey({
      key: {
        kty: 'EC',
        crv: curve,
        x: point.subarray(1, 1 + size).toString('base64url'),
        y: point.subarray(1 + size).toString('base64url'),
      },
      format: 'jwk',
    });
  } catch (cause) {
    throw new FleetkeyError('PKCS11_KEY_UNSUPPORTED', { detail: 'EC point is not on the curve', cause });
  }
}
