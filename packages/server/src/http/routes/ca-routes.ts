import {
  CaList,
  Certificate,
  CertificateList,
  IssueCertificateBody,
  IssuedCertificate,
  RevokeCertificateBody,
  RootCrlBody,
  RootCrlSigned,
  RootExport,
  RootExportBody,
  FleetkeyError,
  Uuid,
  parseDuration,
  NoBody,
  NoQuery,
} from '@fleetkey/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { iso } from '../../context/clock.js';
import type { CaModule } from '../../modules/ca/ca-module.js';
import { toCertificate } from '../../modules/ca/certificate-service.js';
import { requestContext } from '../request-context.js';

const SerialParams = Type.Object({ serial: Type.String({ pattern: '^[0-9a-fA-F]{2,40}$' }) }, { additionalProperties: false });

/** The DER inside one `X509 CRL` PEM block; anything else is refused as CRL_PARAMS_INVALID. */
function pemCrl(pem: string): Buffer {
  const m = /^-----BEGIN X509 CRL-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END X509 CRL-----\s*$/.exec(pem.trim() + '\n');
  if (m === null) throw new FleetkeyError('CRL_PARAMS_INVALID', { detail: 'crlPem is not one PEM X509 CRL' });
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}

export const caRoutes: FastifyPluginAsyncTypebox<{ ca: CaModule; publicUrl: () => string }> = async (app, { ca, publicUrl }) => {
  app.post(
    '/certificates',
    { config: { permission: 'cert:issue' }, schema: { tags: ['certificates'], querystring: NoQuery, body: IssueCertificateBody, response: { 201: IssuedCertificate } } },
    async (req, reply) => {
      const r = await ca.certificates.issueByOperator(requestContext(req), req.body);
      const row = await ca.certificates.findBySerial(r.serial);
      return reply.status(201).send({ certificate: toCertificate(row!, Date.now()), chainPem: r.chainPem });
    },
  );
  app.get(
    '/certificates',
    {
      config: { permission: 'cert:read' },
      schema: {
        tags: ['certificates'],
        querystring: Type.Object({ deviceId: Type.Optional(Uuid), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) }, { additionalProperties: false }),
        response: { 200: CertificateList },
      },
    },
    async (req) => ({
      certificates: await ca.certificates.list({
        ...(req.query.deviceId === undefined ? {} : { deviceId: req.query.deviceId }),
        ...(req.query.limit === undefined ? {} : { limit: req.query.limit }),
      }),
    }),
  );
  app.get(
    '/certificates/:serial',
    { config: { permission: 'cert:read' }, schema: { tags: ['certificates'], params: SerialParams, querystring: NoQuery, response: { 200: Certificate } } },
    async (req) => ca.certificates.show(req.params.serial.toLowerCase()),
  );
  app.post(
    '/certificates/:serial/revoke',
    { config: { permission: 'cert:revoke' }, schema: { tags: ['certificates'], params: SerialParams, querystring: NoQuery, body: RevokeCertificateBody, response: { 200: Certificate } } },
    async (req) => {
      const cert = await ca.certificates.revoke(requestContext(req), req.params.serial.toLowerCase(), req.body.reason);
      // The CRL is re-signed before we answer, so a client fetching it next sees the revocation.
      await ca.crl.schedule(cert.issuerId);
      return cert;
    },
  );

  app.get('/ca', { config: { permission: 'ca:read' }, schema: { tags: ['ca'], querystring: NoQuery, response: { 200: CaList } } }, async () => ({
    authorities: ca.authorities.all().map((a) => ({
      id: a.row.id,
      role: a.row.role,
      status: a.row.status,
      keystore: a.row.keystore,
      subject: a.row.subject,
      notBefore: iso(a.row.not_before),
      notAfter: iso(a.row.not_after),
      certificatePem: a.row.certificate_pem,
      crlUrl: `${publicUrl()}/pki/crl/${a.row.id}.crl`,
    })),
    ocspUrl: `${publicUrl()}/pki/ocsp`,
  }));
  app.post('/ca/rotate', { config: { permission: 'ca:admin' }, schema: { tags: ['ca'], querystring: NoQuery, body: NoBody, response: { 200: Type.Object({ id: Uuid }, { additionalProperties: false }) } } }, async (req) => {
    const a = await ca.authorities.rotate(requestContext(req));
    await ca.crl.schedule(a.row.id);
    return { id: a.row.id };
  });
  app.post(
    '/ca/root/export',
    { config: { permission: 'ca:admin' }, schema: { tags: ['ca'], querystring: NoQuery, body: RootExportBody, response: { 200: RootExport } } },
    async (req) => ({ armored: await ca.authorities.exportRoot(requestContext(req), req.body.passphrase) }),
  );
  app.post(
    '/ca/root/crl',
    { config: { permission: 'ca:admin' }, schema: { tags: ['ca'], querystring: NoQuery, body: RootCrlBody, response: { 200: RootCrlSigned } } },
    async (req) => {
      const ctx = requestContext(req);
      let r: { crlNumber: number; nextUpdate: number };
      if (req.body.crlPem !== undefined) {
        if (req.body.validity !== undefined) throw new FleetkeyError('VALIDATION_FAILED', { detail: 'validity and crlPem exclude each other' });
        r = await ca.authorities.installRootCrl(ctx, pemCrl(req.body.crlPem));
      } else {
        const validityMs = req.body.validity === undefined ? undefined : parseDuration(req.body.validity);
        r = await ca.authorities.resignRootCrl(ctx, validityMs ?? undefined);
      }
      return { crlNumber: r.crlNumber, nextUpdate: iso(r.nextUpdate) };
    },
  );
  app.post('/ca/root/remove', { config: { permission: 'ca:admin' }, schema: { tags: ['ca'], querystring: NoQuery, body: NoBody, response: { 204: Type.Null() } } }, async (req, reply) => {
    await ca.authorities.removeRootKey(requestContext(req));
    return reply.status(204).send(null);
  });
};
