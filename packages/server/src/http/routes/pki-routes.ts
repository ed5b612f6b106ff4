import { toPem } from '@fleetkey/crypto';
import { ocspRequestFromGetPath, OCSP_MAX_REQUEST_BYTES } from '@fleetkey/crypto';
import { FleetkeyError, NoQuery, UUID_PATTERN } from '@fleetkey/protocol';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { CaModule } from '../../modules/ca/ca-module.js';

const uuid = new RegExp(UUID_PATTERN);
const FileParams = Type.Object({ file: Type.String({ maxLength: 64 }) }, { additionalProperties: false });
const OcspPath = Type.Object({ '*': Type.String({ maxLength: 4096 }) }, { additionalProperties: false });

/**
 * Public PKI distribution points, open by necessity: a relying party checking one of our
 * certificates has no operator token. They only serve signed, public objects (CA certificates,
 * CRLs, OCSP answers), and every answer is computed from the store, not from the request.
 */
export const pkiRoutes: FastifyPluginAsync<{ ca: CaModule }> = async (app, { ca }) => {
  app.addContentTypeParser('application/ocsp-request', { parseAs: 'buffer', bodyLimit: OCSP_MAX_REQUEST_BYTES }, (_req, body, done) => done(null, body));

  const issuerOf = (file: string, ext: string): string => {
    const id = file.slice(0, -ext.length);
    if (!file.endsWith(ext) || !uuid.test(id) || ca.authorities.get(id) === undefined) throw new FleetkeyError('NOT_FOUND', { detail: file });
    return id;
  };

  app.get<{ Params: { file: string } }>('/pki/crl/:file', { schema: { hide: true, params: FileParams, querystring: NoQuery } }, async (req, reply) => {
    const pem = req.params.file.endsWith('.pem');
    const der = await ca.crl.current(issuerOf(req.params.file, pem ? '.pem' : '.crl'));
    return pem ? reply.type('application/x-pem-file').send(toPem(der, 'X509 CRL')) : reply.type('application/pkix-crl').send(der);
  });

  app.get<{ Params: { file: string } }>('/pki/ca/:file', { schema: { hide: true, params: FileParams, querystring: NoQuery } }, async (req, reply) => {
    const pem = req.params.file.endsWith('.pem');
    const a = ca.authorities.get(issuerOf(req.params.file, pem ? '.pem' : '.crt'))!;
    return pem ? reply.type('application/x-pem-file').send(a.row.certificate_pem) : reply.type('application/pkix-cert').send(a.der);
  });

  // RFC 6960 Appendix A.1: POST with the DER request, or GET with it base64 (and URL-encoded) in the path.
  app.post('/pki/ocsp', { config: { binaryBody: true }, schema: { hide: true, querystring: NoQuery } }, async (req, reply) => {
    const body = req.body;
    if (!Buffer.isBuffer(body)) throw new FleetkeyError('UNSUPPORTED_MEDIA_TYPE', { detail: 'expected application/ocsp-request' });
    return reply.type('application/ocsp-response').send(await ca.ocsp.respond(body));
  });
  app.get<{ Params: { '*': string } }>('/pki/ocsp/*', { schema: { hide: true, params: OcspPath, querystring: NoQuery } }, async (req, reply) => {
    let der: Buffer;
    try {
      der = ocspRequestFromGetPath(req.params['*']);
    } catch {
      der = Buffer.alloc(0); // answered as malformedRequest by the responder
    }
    return reply.type('application/ocsp-response').send(await ca.ocsp.respond(der));
  });
};
