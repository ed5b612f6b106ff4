// The floor of any broker written on Node: a bare `tls.createServer` with Fleetkey's own server
// identity and trust anchors (mTLS required, client certificate verified by OpenSSL), answering
// the first bytes of a connection (the CONNECT) with a fixed CONNACK and then holding the socket.
// No MQTT parsing, no authentication, no storage. Started by run.mjs with IPC; answers 'gc'.
import { createServer } from 'node:tls';

const { keyPem, chainPem, caPem } = JSON.parse(process.argv[2]);
const CONNACK = Buffer.from([0x20, 0x02, 0x00, 0x00]); // MQTT 3.1.1 CONNACK, accepted
const server = createServer({ key: keyPem, cert: chainPem, ca: caPem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' }, (socket) => {
  socket.on('error', () => undefined);
  socket.once('data', () => socket.write(CONNACK));
});
server.on('tlsClientError', () => undefined);
process.on('message', async ({ id, op }) => {
  if (op === 'gc') {
    for (let i = 0; i < 3; i++) {
      globalThis.gc?.();
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  process.send({ id, ok: true, value: true });
});
process.on('disconnect', () => process.exit(0));
server.listen(0, '127.0.0.1', () => process.send({ ready: true, port: server.address().port }));
