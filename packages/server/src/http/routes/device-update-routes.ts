import type { TLSSocket } from 'node:tls';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { FleetkeyError, NoQuery } from '@fleetkey/protocol';
import type { FastifyRequest } from 'fastify';
import type { DeviceCredentials } from '../../modules/auth/device-credentials.js';
import type { UpdatesModule } from '../../modules/updates/updates-module.js';
import { peerLeaf } from '../peer-certificates.js';
import { sendMetadata, sendTarget } from './update-serving.js';

const File = Type.Object({ file: Type.String({ maxLength: 300 }) }, { additionalProperties: false });
/** A connection's device identity is re-checked at most this often (revocation, status). */
const IDENTITY_TTL_MS = 5_000;

/**
 * The update repositories on the device plane: mTLS with an operational certificate of ours,
 * the device in service. The director answers for the device the CERTIFICATE names; there is no
 * device id in the path, so a device cannot ask for another's documents.
 */
export const deviceUpdateRoutes: FastifyPluginAsyncTypebox<{ updates: UpdatesModule; credentials: DeviceCredentials }> = async (app, { updates, credentials }) => {
  const known = new WeakMap<TLSSocket, { deviceId: string; at: number }>();
  const device = async (req: FastifyRequest): Promise<string> => {
    const socket = req.raw.socket as TLSSocket;
    const hit = known.get(socket);
    const now = Date.now();
    if (hit !== undefined && now - hit.at < IDENTITY_TTL_MS) return hit.deviceId;
    const peer = socket.authorized ? peerLeaf(socket) : undefined;
    if (peer === undefined) throw new FleetkeyError('UNAUTHENTICATED', { detail: 'no verified client certificate' });
    const r = await credentials.certificate(peer.serialNumber);
    if (!r.ok) throw new FleetkeyError('UNAUTHENTICATED', { detail: r.detail });
    known.set(socket, { deviceId: r.deviceId, at: now });
    return r.deviceId;
  };

  app.get('/device/v1/updates/repo/metadata/:file', { schema: { params: File, querystring: NoQuery } }, async (req, reply) => {
    await device(req);
    return sendMetadata(reply, await updates.reader.image(req.params.file));
  });
  app.get('/device/v1/updates/repo/targets/:file', { schema: { params: File, querystring: NoQuery } }, async (req, reply) => {
    await device(req);
    return sendTarget(req, reply, updates.reader, req.params.file);
  });
  app.get('/device/v1/updates/director/metadata/:file', { schema: { params: File, querystring: NoQuery } }, async (req, reply) => {
    const deviceId = await device(req);
    return sendMetadata(reply, await updates.reader.director(req.params.file, deviceId));
  });
};
