#!/usr/bin/env node
// The raw mTLS baseline server for bench/provisioning, in its own process like the Fleetkey
// server: node child-tls.mjs <dir with server.key, server.pem, ca.pem>. Requests and verifies a
// client certificate (rejectUnauthorized) and writes one byte once the handshake is done: in TLS
// 1.3 the client's handshake completes before the server has checked the client certificate,
// so the client counts a handshake only when that byte arrives.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:tls';

const dir = process.argv[2];
const server = createServer(
  {
    key: readFileSync(join(dir, 'server.key')),
    cert: readFileSync(join(dir, 'server.pem')),
    ca: readFileSync(join(dir, 'ca.pem')),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
  },
  (socket) => {
    socket.on('error', () => undefined);
    socket.end('k');
  },
);
server.on('tlsClientError', () => undefined);
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
process.once('SIGTERM', () => server.close(() => process.exit(0)));
