// A software stand-in for a device's TPM, for the benchmark only: an ECDSA P-256 restricted
// signing key whose TPM2B_PUBLIC is what tpm2_createak writes, and TPMS_ATTEST quotes (TPM 2.0
// Part 2 §10.12.12) signed with it as TPM2_Quote would (Part 3 §18.4). The swtpm tests prove the
// real TPM path; this lets 1,000 devices attest on a 2-core machine.
import { createHash, generateKeyPairSync, sign } from 'node:crypto';

export function softTpm() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const jwk = publicKey.export({ format: 'jwk' });
  const x = Buffer.from(jwk.x, 'base64url');
  const y = Buffer.from(jwk.y, 'base64url');
  // TPMT_PUBLIC: ECC, nameAlg SHA-256, fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|restricted|sign,
  // no authPolicy, symmetric NULL, ECDSA/SHA-256, NIST P-256, kdf NULL, unique (x, y).
  const t = Buffer.concat([Buffer.from('0023000b000500720000001000180' + '00b000300100020', 'hex'), x, Buffer.from('0020', 'hex'), y]);
  const size = Buffer.alloc(2);
  size.writeUInt16BE(t.length);
  const akPublic = Buffer.concat([size, t]);
  const name = Buffer.concat([Buffer.from('000b', 'hex'), createHash('sha256').update(t).digest()]);
  return {
    akPublic,
    /** A quote of sha256:`pcrs` holding `values` (hex by index), qualified by `nonceHex`. */
    quote(pcrs, values, nonceHex) {
      const nonce = Buffer.from(nonceHex, 'hex');
      const bitmap = Buffer.alloc(3);
      for (const p of pcrs) bitmap[p >> 3] |= 1 << (p & 7);
      const digest = createHash('sha256');
      for (const p of [...pcrs].sort((a, b) => a - b)) digest.update(Buffer.from(values[String(p)], 'hex'));
      const u16 = (n) => {
        const b = Buffer.alloc(2);
        b.writeUInt16BE(n);
        return b;
      };
      const attest = Buffer.concat([
        Buffer.from('ff5443478018', 'hex'),
        u16(name.length), name,
        u16(nonce.length), nonce,
        Buffer.alloc(17), // clockInfo
        Buffer.alloc(8), // firmwareVersion
        Buffer.from('00000001000b03', 'hex'), bitmap,
        u16(32), digest.digest(),
      ]);
      const sig = sign('sha256', attest, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      const signature = Buffer.concat([Buffer.from('0018000b0020', 'hex'), sig.subarray(0, 32), Buffer.from('0020', 'hex'), sig.subarray(32)]);
      return { quote: attest, signature };
    },
  };
}
