import { createPublicKey, type KeyObject } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import type { TpmPublic } from './public-area.js';

/**
 * Converts a parsed public area to a Node public KeyObject. Importing through JWK makes OpenSSL
 * check that an ECC point lies on its curve, which the TPM wire format alone cannot show.
 *
 * @throws FleetkeyError TPM_PUBLIC_MALFORMED when OpenSSL refuses the key material
 */
export function tpmPublicToKeyObject(pub: TpmPublic): KeyObject {
  let key = cache.get(pub);
  if (key === undefined) {
    key = convert(pub);
    cache.set(pub, key);
  }
  return key;
}

// Parsed public areas are immutable in practice and re-importing a key is the slow part of
// makeCredential; the WeakMap lets a caller that keeps the parsed EK reuse its KeyObject.
const cache = new WeakMap<TpmPublic, KeyObject>();

function convert(pub: TpmPublic): KeyObject {
  try {
    if (pub.type === 'rsa') {
      const e = Buffer.alloc(4);
      e.writeUInt32BE(pub.exponent);
      let start = 0;
      while (start < e.length - 1 && e[start] === 0) start++;
      return createPublicKey({
        key: { kty: 'RSA', n: pub.modulus.toString('base64url'), e: e.subarray(start).toString('base64url') },
        format: 'jwk',
      });
    }
    return createPublicKey({
      key: { kty: 'EC', crv: pub.curve, x: pub.x.toString('base64url'), y: pub.y.toString('base64url') },
      format: 'jwk',
    });
  } catch (cause) {
    throw new FleetkeyError('TPM_PUBLIC_MALFORMED', { detail: `key material refused: ${String(cause)}`, cause });
  }
}
