import type { TLSSocket } from 'node:tls';
import { NoQuery, RenewBody } from '@fleetkey/protocol';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import Fastify, { type FastifyInstance } from 'fastify';
import type { OpContext } from '../context/op-context.js';
import type { AuditLog } from '../modules/audit/audit-log.js';
import type { CaModule } from '../modules/ca/ca-module.js';
import { installErrorHandlers } from './error-handler.js';
import './fastify-types.js';
import { hardenApp, hardenedServerOptions, type HardeningOptions } from './harden-app.js';
import { TLS_POLICY } from './tls-policy.js';
import { provisioningRoutes, type ProvisioningRouteDeps } from './routes/provisioning-routes.js';
import { sessionTokenRoutes } from './routes/session-token-routes.js';
import type { UnitOfWork } from '../context/unit-of-work.js';
import type { DeviceCredentials } from '../modules/auth/device-credentials.js';
import type { SessionTokens } from '../modules/auth/session-tokens.js';
import type { UpdatesModule } from '../modules/updates/updates-module.js';
import { deviceUpdateRoutes } from './routes/device-update-routes.js';
import type { AttestationModule } from '../modules/attestation/attestation-module.js';
import { deviceAttestationRoutes, quarantineGuard } from './routes/attestation-routes.js';
import type { ProvisioningMetrics } from '../modules/metrics/metrics.js';

/** The routes that end in an issued certificate, by attestation method (metrics). */
const PROVISIONING_ROUTES: Readonly<Record<string, string>> = {
  '/device/v1/provision/x509': 'x509',
  '/device/v1/provision/symmetric': 'symmetric',
  '/device/v1/provision/tpm/finish': 'tpm',
};

function provisioningOutcome(status: number): string {
  if (status === 200) return 'issued';
  if (status === 403) return 'refused';
  if (status === 429) return 'rate_limited';
  return status < 500 ? 'invalid' : 'error';
}

const RenewResult = Type.Object(
  { serial: Type.String(), certificatePem: Type.String(), chainPem: Type.String(), notAfter: Type.String(), renewAfter: Type.String() },
  { additionalProperties: false },
);

export interface DeviceListenerDeps extends HardeningOptions {
  readonly ca: CaModule;
  readonly audit: AuditLog;
}

/**
 * The device plane's listener without its routes: an HTTPS server separate from the operator
 * plane, asking every client for a certificate, and hardened exactly like it (harden-app.ts):
 * its provisioning routes answer anyone, so its input rules cannot be weaker. Trust is the root
 * plus the issuing and manufacturing CAs, so a handshake proves possession of a key certified by
 * us; what that certificate may do is decided per route against the store.
 */
export function deviceFastify(deps: DeviceListenerDeps): FastifyInstance {
  const { ca } = deps;
  const trust = () => [ca.authorities.root(), ...ca.authorities.trusted('issuing'), ...ca.authorities.trusted('manufacturing')].map((a) => a.row.certificate_pem);
  const tlsOptions = () => ({ key: ca.tls.keyPem, cert: ca.tls.chainPem, ca: trust(), requestCert: true, rejectUnauthorized: false, ...TLS_POLICY });
  const app = Fastify({ ...hardenedServerOptions(deps), https: tlsOptions() }) as unknown as FastifyInstance;
  // After a rotation the new issuing CA must be trusted for new handshakes at once.
  const retrust = () => (app.server as unknown as { setSecureContext(o: object): void }).setSecureContext(tlsOptions());
  ca.authorities.onChange(retrust);
  hardenApp(app);
  installErrorHandlers(app, deps.audit);
  return app;
}

/** The device plane with its routes: renewal, provisioning, session tokens. */
export async function buildDeviceApp(
  deps: DeviceListenerDeps & {
    provisioning: ProvisioningRouteDeps;
    sessions: { uow: UnitOfWork; credentials: DeviceCredentials; sessions: SessionTokens };
    metrics?: ProvisioningMetrics;
    updates?: { updates: UpdatesModule; credentials: DeviceCredentials };
    attestation?: AttestationModule;
  },
): Promise<FastifyInstance> {
  const { ca } = deps;
  const app = deviceFastify(deps).withTypeProvider<TypeBoxTypeProvider>();
  // Issue 13: a quarantined device reaches only the attestation, update and renewal routes.
  if (deps.attestation !== undefined) app.addHook('onRequest', quarantineGuard(deps.attestation));

  app.post('/device/v1/renew', { schema: { querystring: NoQuery, body: RenewBody, response: { 200: RenewResult } } }, async (req) => {
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
  const metrics = deps.metrics;
  if (metrics !== undefined) {
    app.addHook('onResponse', async (req, reply) => {
      const method = PROVISIONING_ROUTES[req.routeOptions.url ?? ''];
      if (method !== undefined) metrics.provisioning(method, provisioningOutcome(reply.statusCode), reply.elapsedTime / 1000);
    });
  }
  await app.register(provisioningRoutes, { deps: deps.provisioning });
  await app.register(sessionTokenRoutes, deps.sessions);
  if (deps.updates !== undefined) await app.register(deviceUpdateRoutes, deps.updates);
  if (deps.attestation !== undefined) await app.register(deviceAttestationRoutes, { attestation: deps.attestation, credentials: deps.sessions.credentials });
  await app.ready();
  return app as unknown as FastifyInstance;
}
