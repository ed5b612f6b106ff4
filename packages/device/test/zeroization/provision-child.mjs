// A device process: provisions from its bundle with the built SDK (the code a device runs), then
// waits. On "snapshot" from the parent it writes a V8 heap snapshot (V8 collects garbage first).
// No explicit GC before the parent reads its memory: a device process does not force one either.
// argv: <bundleDir> <snapshotPath> [leak]   ("leak": the control run keeps copies on purpose)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';

const [bundleDir, snapshotPath, mode] = process.argv.slice(2);
const sdk = await import(new URL('../../dist/index.js', import.meta.url).href);
await sdk.provision(bundleDir, { retry: { baseDelayMs: 10, maxDelayMs: 50, maxAttempts: 3 } });
if (mode === 'leak') {
  // What careless code does: the key's base64 text kept in a string, its bytes in a Buffer.
  const text = readFileSync(join(bundleDir, 'device-key.b64'), 'utf8').trim();
  globalThis.leakedText = `key=${text}`;
  globalThis.leakedBytes = Buffer.from(text, 'base64');
}
process.stdout.write('provisioned\n');
process.stdin.setEncoding('utf8');
process.stdin.on('data', (cmd) => {
  if (cmd.includes('snapshot')) {
    writeHeapSnapshot(snapshotPath);
    process.stdout.write('snapshot\n');
  }
});
process.stdin.on('end', () => process.exit(0));
