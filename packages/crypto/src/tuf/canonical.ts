import { canonicalize } from '@tufjs/canonical-json';

/**
 * The bytes a TUF signature covers: the `signed` object in OLPC canonical JSON (TUF 1.0 §4.2,
 * "canonical JSON" as securesystemslib encodes it). We use tuf-js's own encoder so the bytes we
 * sign are exactly the bytes the reference client verifies.
 */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalize(value), 'utf8');
}

/**
 * A whole metadata document as stored and served: plain JSON (what python-tuf's JSONSerializer
 * writes). Not canonical JSON: OLPC canonical JSON leaves control characters unescaped (an
 * ECDSA key's PEM newlines), so it is not JSON a client's parser accepts; it is only ever the
 * input of a signature.
 */
export function metadataDocument(value: unknown): string {
  return JSON.stringify(value);
}
