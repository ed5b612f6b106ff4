import type { TLSSocket } from 'node:tls';
import {
  AttestationHistoryQuery,
  AttestationNonceAnswer,
  AttestationPolicy,
  AttestationPolicyBody,
  AttestationQuoteBody,
  AttestationVerdict,
  DeviceAttestations,
  FleetkeyError,
  NoBody,
  NoQuery,
  Uuid,
} from '@fleetkey/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { OpContext } from '../../context/op-context.js';
import { auditedErrors } from '../../context/unit-of-work.js';
import type { DeviceCredentials } from '../../modules/auth/device-credentials.js';
import type { AttestationModule } from '../../modules/attestation/attestation-module.js';
import { peerLeaf } from '../peer-certificates.js';
import { requestContext } from '../request-context.js';

const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });

/** Operator plane: policies (`attestation:policy`) and each device's history (`device:read`). */
export const attestationRoutes: FastifyPluginAsyncTypebox<{ attestation: AttestationModule }> = async (app, { attestation }) => {
  app.get('/attestation/policies', { config: { permission: 'device:read' }, schema: { tags: ['attestation'], querystring: NoQuery, response: { 200: Type.Object({ policies: Type.Array(AttestationPolicy) }, { additionalProperties: false }) } } }, async () => ({
    policies: await attestation.policies.list(),
  }));
  app.put(
    '/attestation/policies',
    { config: { permission: 'attestation:policy' }, schema: { tags: ['attestation'], querystring: NoQuery, body: AttestationPolicyBody, response: { 200: AttestationPolicy } } },
    async (req) => attestation.policies.set(requestContext(req), req.body),
  );
  app.delete(
    '/attestation/policies/:id',
    { config: { permission: 'attestation:policy' }, schema: { tags: ['attestation'], params: IdParams, querystring: NoQuery, body: Type.Optional(NoBody) } },
    async (req, reply) => {
      await attestation.policies.remove(requestContext(req), req.params.id);
      return reply.status(204).send();
    },
  );
  app.post(
    '/devices/:id/attestation/request',
    {
      config: { permission: 'command:send' },
      schema: { tags: ['devices'], params: IdParams, querystring: NoQuery, body: Type.Union([NoBody, Type.Object({}, { additionalProperties: false })]), response: { 200: Type.Object({ requested: Type.Boolean() }, { additionalProperties: false }) } },
    },
    async (req) => attestation.service.request(requestContext(req), req.params.id),
  );
  app.get(
    '/devices/:id/attestations',
    { config: { permission: 'device:read' }, schema: { tags: ['devices'], params: IdParams, querystring: AttestationHistoryQuery, response: { 200: DeviceAttestations } } },
    async (req) => attestation.service.history(req.params.id, req.query.limit ?? 100),
  );
};

/**
 * The device-plane prefixes a quarantined device may still reach (issue 13): attestation (to get
 * out of quarantine), updates (to be repaired) and certificate renewal (without it a quarantine
 * longer than the certificate's lifetime would cut the repair path for good).
 */
export const QUARANTINE_ALLOWED_DEVICE_ROUTES: readonly string[] = ['/device/v1/attestation/', '/device/v1/updates/', '/device/v1/update/', '/device/v1/renew'];

/**
 * Device plane: POST /device/v1/attestation/nonce and /device/v1/attestation/quote over mTLS with
 * the operational certificate. The device is who its certificate says; a body naming another
 * device is refused. Also installs the quarantine allow-list for every other device-plane route.
 */
export const deviceAttestationRoutes: FastifyPluginAsyncTypebox<{ attestation: AttestationModule; credentials: DeviceCredentials }> = async (app, deps) => {
  const who = async (socket: TLSSocket): Promise<string> => {
    const peer = socket.authorized ? peerLeaf(socket) : undefined;
    if (peer === undefined) throw new FleetkeyError('UNAUTHENTICATED', { detail: 'no client certificate' });
    const r = await deps.credentials.certificate(peer.serialNumber);
    if (!r.ok) throw new FleetkeyError('UNAUTHENTICATED', { detail: r.detail });
    if (!deps.attestation.limiter.allow(r.deviceId, Date.now())) {
      const err = new FleetkeyError('RATE_LIMITED', { detail: `device ${r.deviceId} over its attestation budget` });
      // Audited at most once per refill by the limiter's bound, not per request.
      auditedErrors.add(err);
      throw err;
    }
    return r.deviceId;
  };
  const ctxOf = (ip: string, id: string, deviceId?: string): OpContext => ({ actor: { kind: 'anonymous', label: deviceId === undefined ? `device@${ip}` : `device:${deviceId}` }, requestId: id, remoteAddress: ip });
  const audited = (e: unknown): never => {
    if (e instanceof FleetkeyError && e.code === 'UNAUTHENTICATED') auditedErrors.add(e);
    throw e;
  };
  app.post(
    '/device/v1/attestation/nonce',
    { schema: { querystring: NoQuery, body: Type.Union([NoBody, Type.Object({}, { additionalProperties: false })]), response: { 200: AttestationNonceAnswer } } },
    async (req) => {
      const deviceId = await who(req.raw.socket as TLSSocket).catch(audited);
      return deps.attestation.service.nonce(ctxOf(req.ip, req.id, deviceId), deviceId);
    },
  );
  app.post('/device/v1/attestation/quote', { schema: { querystring: NoQuery, body: AttestationQuoteBody, response: { 200: AttestationVerdict } } }, async (req) => {
    const deviceId = await who(req.raw.socket as TLSSocket).catch(audited);
    return deps.attestation.service.submit(ctxOf(req.ip, req.id, deviceId), deviceId, req.body);
  });
};

/**
 * Containment on the device plane: a request authenticated by a quarantined device's certificate
 * reaches only the allowed prefixes; anything else is DEVICE_QUARANTINED (its reason audited by
 * the error handler). The certificate's subject CN is the device id our CA issued it for.
 */
export function quarantineGuard(attestation: AttestationModule) {
  return async (req: { url: string; raw: { socket: unknown } }): Promise<void> => {
    const socket = req.raw.socket as TLSSocket;
    if (!socket.authorized) return;
    const path = req.url.split('?')[0] ?? '';
    if (QUARANTINE_ALLOWED_DEVICE_ROUTES.some((p) => path.startsWith(p))) return;
    const cn = socket.getPeerCertificate(false)?.subject?.CN;
    const deviceId = typeof cn === 'string' ? cn : Array.isArray(cn) ? String(cn[0]) : undefined;
    if (deviceId === undefined) return;
    const reason = attestation.service.contained(deviceId);
    if (reason !== null) throw new FleetkeyError('DEVICE_QUARANTINED', { detail: `device ${deviceId} quarantined: ${reason}` });
  };
}
