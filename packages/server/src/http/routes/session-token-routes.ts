import type { TLSSocket } from 'node:tls';
import { FleetkeyError, NoQuery, Uuid } from '@fleetkey/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { UnitOfWork } from '../../context/unit-of-work.js';
import { auditedErrors } from '../../context/unit-of-work.js';
import type { DeviceCredentials } from '../../modules/auth/device-credentials.js';
import type { SessionTokens } from '../../modules/auth/session-tokens.js';
import { peerLeaf } from '../peer-certificates.js';

/**
 * POST /device/v1/session-token — a device proves itself here (mTLS with its operational
 * certificate, or a SAS token over `session/<deviceId>` in the body) and gets an ES256 session
 * token for the gateway (username = device id, password = token). Refusals are neutral.
 */
export const sessionTokenRoutes: FastifyPluginAsyncTypebox<{ uow: UnitOfWork; credentials: DeviceCredentials; sessions: SessionTokens }> = async (app, deps) => {
  app.post(
    '/device/v1/session-token',
    {
      schema: {
        querystring: NoQuery,
        body: Type.Object(
          { deviceId: Type.Optional(Uuid), token: Type.Optional(Type.String({ minLength: 10, maxLength: 2048 })), lifetimeSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 3600 })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ token: Type.String(), expiresAt: Type.String(), deviceId: Uuid }, { additionalProperties: false }) },
      },
    },
    async (req) => {
      const socket = req.raw.socket as TLSSocket;
      const peer = socket.authorized ? peerLeaf(socket) : undefined;
      const who = peer !== undefined ? 'certificate' : 'token';
      const ctx = { actor: { kind: 'anonymous' as const, label: `device@${req.ip}` }, requestId: req.id, remoteAddress: req.ip };
      // Credentials are checked before the unit of work opens: inside it every read must use its
      // transaction (SQLite has one connection), and the checker reads through the pool.
      const r =
        peer !== undefined
          ? await deps.credentials.certificate(peer.serialNumber)
          : req.body.deviceId !== undefined && req.body.token !== undefined
            ? await deps.credentials.token(req.body.deviceId, req.body.token, 'session')
            : { ok: false as const, kind: 'not_authorized' as const, detail: 'no client certificate and no token' };
      return deps.uow
        .run(ctx, { action: 'session_token.issue', subject: r.ok ? `device:${r.deviceId}` : req.body.deviceId === undefined ? 'device' : `device:${req.body.deviceId}` }, async (w) => {
          if (!r.ok) throw new FleetkeyError('UNAUTHENTICATED', { detail: r.detail });
          const issued = await deps.sessions.issue({ deviceId: r.deviceId, serial: r.serial }, req.body.lifetimeSeconds);
          w.note({ via: who, expiresAt: issued.expiresAt.toISOString(), ...(r.serial === null ? {} : { serial: r.serial }) });
          return { token: issued.token, expiresAt: issued.expiresAt.toISOString(), deviceId: r.deviceId };
        })
        .catch((e: unknown) => {
          if (e instanceof FleetkeyError && e.code === 'UNAUTHENTICATED') auditedErrors.add(e);
          throw e;
        });
    },
  );
};
