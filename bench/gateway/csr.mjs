// Fast P-256 key + PKCS#10 CSR for the bench setup (thousands of devices in seconds): the DER is
// built by hand (RFC 2986 §4) and signed with Node's crypto, ~10x faster than a WebCrypto
// generator. The server verifies each CSR's signature, so a wrong encoding fails loudly.
import { generateKeyPairSync, sign } from 'node:crypto';

const len = (n) => (n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]));
const tlv = (tag, ...parts) => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
};
const seq = (...p) => tlv(0x30, ...p);

// Name: CN=device (the CA takes the subject from its own template, never from the CSR).
const NAME = seq(tlv(0x31, seq(tlv(0x06, Buffer.from([0x55, 0x04, 0x03])), tlv(0x0c, Buffer.from('device')))));
const ECDSA_SHA256 = seq(tlv(0x06, Buffer.from([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02])));

export function keyAndCsr() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const info = seq(tlv(0x02, Buffer.from([0])), NAME, publicKey.export({ type: 'spki', format: 'der' }), Buffer.from([0xa0, 0x00]));
  const sig = sign('sha256', info, privateKey);
  const der = seq(info, ECDSA_SHA256, tlv(0x03, Buffer.from([0]), sig));
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }),
    csrPem: `-----BEGIN CERTIFICATE REQUEST-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE REQUEST-----\n`,
  };
}
