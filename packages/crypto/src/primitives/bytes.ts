import { randomFillSync, timingSafeEqual } from 'node:crypto';

/**
 * Constant-time equality for secrets (MACs, signatures, token hashes). Unlike
 * `crypto.timingSafeEqual` it does not throw on a length mismatch: the comparison still runs
 * (against `a` itself) so the time depends only on `a.length`, which is public for every caller
 * here (a fixed MAC size), and the answer is false.
 */
export function timingSafeEqualBytes(a: Uint8Array, b: Uint8Array): boolean {
  const sameLength = a.length === b.length;
  const equal = timingSafeEqual(a, sameLength ? b : a);
  return sameLength && equal;
}

/**
 * Overwrites a buffer holding secret material. JS cannot promise no copy survives elsewhere
 * (the GC may have moved it, strings are immutable), so this narrows the window rather than
 * closing it: call it in `finally` on every plaintext key buffer we create.
 */
export function zero(buf: Uint8Array | undefined): void {
  if (buf !== undefined) buf.fill(0);
}

/**
 * A zero-filled buffer for secret material whose bytes live outside the V8 heap. `Buffer.alloc`
 * and `randomBytes` of 64 bytes or less make on-heap typed arrays, which the young-generation GC
 * copies when it moves them, leaving the old copy behind where `zero()` cannot reach it (found by
 * packages/device/test/zeroization/heap-snapshot.test.ts). An ArrayBuffer's backing store is
 * allocated off-heap and never moved, so zeroing it erases the only copy.
 */
export function secretBuffer(length: number): Buffer {
  return Buffer.from(new ArrayBuffer(length));
}

/** `length` CSPRNG bytes in a {@link secretBuffer}. */
export function randomSecret(length: number): Buffer {
  return randomFillSync(secretBuffer(length));
}
