import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FleetkeyError } from '@fleetkey/protocol';
import type { Signer } from '../../src/signer/signer.js';
import {
  buildOcspError,
  buildOcspResponse,
  certIdMatchesIssuer,
  ocspRequestFromGetPath,
  parseOcspRequest,
  type CrlReason,
  type ParsedOcspRequest,
} from '../../src/pki/index.js';

export interface RevocationState {
  readonly status: 'good' | 'revoked';
  readonly revokedAt?: Date;
  readonly reason?: CrlReason;
}

/**
 * A tiny OCSP responder over node:http for tests: GET per RFC 6960 Appendix A.1 and POST,
 * answering from `state` (serialHex → status); serials it does not know are "unknown",
 * certIds for another issuer get "unauthorized" (RFC 6960 §2.3).
 */
export async function startOcspResponder(opts: { issuerDer: Buffer; signer: Signer; state: Map<string, RevocationState> }) {
  const requests: ParsedOcspRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 16384) chunks.push(c);
    });
    req.on('end', () => {
      void (async () => {
        let body: Buffer;
        try {
          let der: Buffer;
          if (req.method === 'GET' && req.url?.startsWith('/ocsp/') === true) der = ocspRequestFromGetPath(req.url.slice('/ocsp/'.length));
          else if (req.method === 'POST' && req.url === '/ocsp') der = Buffer.concat(chunks);
          else {
            res.writeHead(404).end();
            return;
          }
          const parsed = parseOcspRequest(der);
          requests.push(parsed);
          if (!parsed.certIds.every((id) => certIdMatchesIssuer(id, opts.issuerDer))) {
            body = buildOcspError('unauthorized');
          } else {
            const now = new Date();
            body = await buildOcspResponse({
              responderCertificate: opts.issuerDer,
              signer: opts.signer,
              producedAt: now,
              responses: parsed.certIds.map((certId) => {
                const s = opts.state.get(certId.serialHex);
                const common = { certId, thisUpdate: new Date(now.getTime() - 60_000), nextUpdate: new Date(now.getTime() + 3_600_000) };
                if (s === undefined) return { ...common, status: 'unknown' as const };
                if (s.status === 'good') return { ...common, status: 'good' as const };
                return { ...common, status: 'revoked' as const, revokedAt: s.revokedAt!, ...(s.reason === undefined ? {} : { reason: s.reason }) };
              }),
              ...(parsed.nonce === undefined ? {} : { nonce: parsed.nonce }),
            });
          }
        } catch (e) {
          body = e instanceof FleetkeyError && e.code === 'OCSP_REQUEST_MALFORMED' ? buildOcspError('malformedRequest') : buildOcspError('internalError');
        }
        res.writeHead(200, { 'content-type': 'application/ocsp-response', 'content-length': body.length }).end(body);
      })();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/ocsp`, requests, close: () => new Promise<void>((r) => server.close(() => r())) };
}
