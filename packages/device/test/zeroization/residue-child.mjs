// A process that does one thing with a secret, zeroes every buffer it was handed back, and
// waits, so the parent can search its memory for what the operation left behind.
// argv: <dir> <mode> [machineSecretHex]
//   decrypt-node      Node's Decipher over the whole sealed box (dir/sealed, dir/aes.key)
//   decrypt-fleetkey  aes256GcmDecrypt from @fleetkey/crypto over the same box
//   keygen-reparse    async keygen with DER encoding, the DER turned back into a KeyObject
//                     (what the file keystore did before); the DER is written to dir/plain.der
//   keygen-fleetkey   FileKeystore.generateKey with a machine-secret protector
import { createDecipheriv, createPrivateKey, generateKeyPair } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const [dir, mode, secretHex] = process.argv.slice(2);
const crypto = await import('@fleetkey/crypto');
const sdk = await import(new URL('../../dist/index.js', import.meta.url).href);
const keep = [];
if (mode === 'decrypt-node' || mode === 'decrypt-fleetkey') {
  const key = readFileSync(join(dir, 'aes.key'));
  const sealed = readFileSync(join(dir, 'sealed'));
  let plain;
  if (mode === 'decrypt-node') {
    const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12), { authTagLength: 16 });
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    plain = d.update(sealed.subarray(12, sealed.length - 16));
    d.final();
  } else {
    plain = crypto.aes256GcmDecrypt(key, sealed);
  }
  plain.fill(0);
  key.fill(0);
} else if (mode === 'keygen-reparse') {
  const { privateKey: der } = await promisify(generateKeyPair)('ec', { namedCurve: 'P-256', publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'der' } });
  writeFileSync(join(dir, 'plain.der'), der, { mode: 0o600 });
  keep.push(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
  der.fill(0);
} else if (mode === 'keygen-fleetkey') {
  const ks = await sdk.FileKeystore.open({ dir: join(dir, 'keys'), protector: { kind: 'machine', secret: Buffer.from(secretHex, 'hex') } });
  keep.push(await ks.generateKey('operational-1', 'P-256'));
}
globalThis.keep = keep;
process.stdout.write('done\n');
process.stdin.on('data', () => undefined);
process.stdin.on('end', () => process.exit(0));
