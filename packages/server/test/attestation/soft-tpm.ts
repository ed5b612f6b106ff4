import { createHash, generateKeyPairSync, sign } from 'node:crypto';

/**
 * A software stand-in for a TPM's AK (tests of containment and bench only; the swtpm suite in
 * packages/device/test/attestation.test.ts proves the real TPM path): an ECDSA P-256 restricted
 * signing key whose TPM2B_PUBLIC is what tpm2_createak writes, and TPMS_ATTEST quotes (TPM 2.0
 * Part 2 §10.12.12) signed as TPM2_Quote signs them (Part 3 §18.4).
 */
export function softTpm() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwk = publicKey.export({ format: 'jwk' });
  const x = Buffer.from(jwk.x!, 'base64url');
  const y = Buffer.from(jwk.y!, 'base64url');
  const t = Buffer.concat([Buffer.from('0023000b00050072000000100018000b000300100020', 'hex'), x, Buffer.from('0020', 'hex'), y]);
  const u16 = (n: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(n);
    return b;
  };
  const akPublic = Buffer.concat([u16(t.length), t]);
  const name = Buffer.concat([Buffer.from('000b', 'hex'), createHash('sha256').update(t).digest()]);
  return {
    akPublic,
    quote(pcrs: readonly number[], values: Record<string, string>, nonceHex: string): { quote: Buffer; signature: Buffer } {
      const nonce = Buffer.from(nonceHex, 'hex');
      const bitmap = Buffer.alloc(3);
      for (const p of pcrs) bitmap[p >> 3] = (bitmap[p >> 3] as number) | (1 << (p & 7));
      const digest = createHash('sha256');
      for (const p of [...pcrs].sort((a, b) => a - b)) digest.update(Buffer.from(values[String(p)]!, 'hex'));
      const attest = Buffer.concat([
        Buffer.from('ff5443478018', 'hex'),
        u16(name.length),
        name,
        u16(nonce.length),
        nonce,
        Buffer.alloc(17),
        Buffer.alloc(8),
        Buffer.from('00000001000b03', 'hex'),
        bitmap,
        u16(32),
        digest.digest(),
      ]);
      const sig = sign('sha256', attest, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      return { quote: attest, signature: Buffer.concat([Buffer.from('0018000b0020', 'hex'), sig.subarray(0, 32), Buffer.from('0020', 'hex'), sig.subarray(32)]) };
    },
  };
}
