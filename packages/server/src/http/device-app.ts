import { randomUUID } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { RenewBody } from '@fleetkey/protocol';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { OpContext } from '../context/op-context.js';
import type { AuditLog } from '../modules/audit/audit-log.js';
import type { CaModule } from '../modules/ca/ca-module.js';
import { installErrorHandlers } from './error-handler.js';
import './fastify-types.js';
import { TLS_POLICY } from './tls-policy.js';
import { validatorCompiler } from './validators.js';
import { provisioningRoutes, type ProvisioningRouteDeps } from './routes/provisioning-routes.js';
import { sessionTokenRoutes } from './routes/session-token-routes.js';
import type { UnitOfWork } from '../context/unit-of-work.js';
import type { DeviceCredentials } from '../modules/auth/device-credentials.js';
import type { SessionTokens } from '../modules/auth/session-tokens.js';

const RenewResult = Type.Object(
  { serial: Type.String(), certificatePem: Type.String(), chainPem: Type.String(), notAfter: Type.String(), renewAfter: Type.String() },
  { additionalProperties: false },
);

/**
 * The device plane: an HTTPS listener separate from the operator plane, asking every client for
 * a certificate. Trust is the root plus the issuing CAs, so a handshake proves possession of a
 * key certified by us; what that certificate may do is decided per route against the store.
 */
export async function buildDeviceApp(deps: {
  ca: CaModule;
  audit: AuditLog;
  logger: FastifyBaseLogger;
  bodyLimitBytes: number;
  provisioning: ProvisioningRouteDeps;
  sessions: { uow: UnitOfWork; credentials: DeviceCredentials; sessions: SessionTokens };
}): Promise<FastifyInstance> {
  const { ca } = deps;
  const trust = () => [ca.authorities.root(), ...ca.authorities.trusted('issuing'), ...ca.authorities.trusted('manufacturing')].map((a) => a.row.certificate_pem);
  const tlsOptions = () => ({ key: ca.tls.keyPem, cert: ca.tls.chainPem, ca: trust(), requestCert: true, rejectUnauthorized: false, ...TLS_POLICY });
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: deps.bodyLimitBytes,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    https: tlsOptions(),
  }).withTypeProvider<TypeBoxTypeProvider>();
  // After a rotation the new issuing CA must be trusted for new handshakes at once.
  ca.authorities.onChange(() => (app.server as unknown as { setSecureContext(o: object): void }).setSecureContext(tlsOptions()));
  app.setValidatorCompiler(validatorCompiler);
  app.decorateRequest('actor', null);
  installErrorHandlers(app as unknown as FastifyInstance, deps.audit);

  app.post('/device/v1/renew', { schema: { body: RenewBody, response: { 200: RenewResult } } }, async (req) => {
    const socket = req.raw.socket as TLSSocket;
    const peer = socket.getPeerCertificate(false);
    const ctx: OpContext = {
      actor: { kind: 'anonymous', label: peer?.subject?.CN === undefined ? `device@${req.ip}` : `device:${String(peer.subject.CN)}` },
      requestId: req.id,
      remoteAddress: req.ip,
    };
    // No chain to our CA (or no certificate at all): a neutral refusal; the reason is audited.
    const presented = socket.authorized && peer?.raw !== undefined ? peer.raw : Buffer.alloc(0);
    const issued = await ca.certificates.renew(ctx, presented, req.body.csr, socket.authorized ? null : String(socket.authorizationError ?? 'no client certificate'));
    const lifetime = issued.notAfter - issued.notBefore;
    return {
      serial: issued.serial,
      certificatePem: issued.pem,
      chainPem: issued.chainPem,
      notAfter: new Date(issued.notAfter).toISOString(),
      // Devices renew at two thirds of the lifetime (DESIGN.md §3, "Renew and rotate").
      renewAfter: new Date(issued.notBefore + Math.floor((lifetime * 2) / 3)).toISOString(),
    };
  });
  await app.register(provisioningRoutes, { deps: deps.provisioning });
  await app.register(sessionTokenRoutes, deps.sessions);
  await app.ready();
  return app as unknown as FastifyInstance;
}
