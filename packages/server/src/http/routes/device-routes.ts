import {
  CreateDeviceBody,
  Device,
  DeviceList,
  DeviceListQuery,
  DeviceStatusAction,
  DeviceStatusBody,
  DeviceSummary,
  NameAt,
  AtQuery,
  BindingList,
  NoQuery,
  OptionalBody,
  Uuid,
} from '@fleetkey/protocol';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { requestContext } from '../request-context.js';
import type { OperatorServices } from './services.js';

const IdParams = Type.Object({ id: Uuid }, { additionalProperties: false });

export const deviceRoutes: FastifyPluginAsyncTypebox<{ services: OperatorServices; online?: () => number | null }> = async (app, { services, online }) => {
  app.post(
    '/devices',
    { config: { permission: 'device:create' }, schema: { tags: ['devices'], querystring: NoQuery, body: CreateDeviceBody, response: { 201: Device } } },
    async (req, reply) => reply.status(201).send(await services.devices.create(requestContext(req), req.body)),
  );

  app.get(
    '/devices',
    { config: { permission: 'device:read' }, schema: { tags: ['devices'], querystring: DeviceListQuery, response: { 200: DeviceList } } },
    async (req) => ({ devices: await services.devices.list(stripUndefined(req.query)) }),
  );

  app.get(
    '/devices/summary',
    { config: { permission: 'device:read' }, schema: { tags: ['devices'], querystring: NoQuery, response: { 200: DeviceSummary } } },
    async () => ({ ...(await services.devices.summary()), online: online?.() ?? null }),
  );

  app.get(
    '/devices/:id',
    { config: { permission: 'device:read' }, schema: { tags: ['devices'], params: IdParams, querystring: NoQuery, response: { 200: Device } } },
    async (req) => services.devices.get(req.params.id),
  );

  app.post(
    '/devices/:id/:action',
    {
      config: { permission: 'device:status' },
      schema: {
        tags: ['devices'],
        params: Type.Object({ id: Uuid, action: DeviceStatusAction }, { additionalProperties: false }),
        querystring: NoQuery,
        body: OptionalBody(DeviceStatusBody),
        response: { 200: Device },
      },
    },
    async (req) => services.devices.changeStatus(requestContext(req), req.params.id, req.params.action, req.body?.reason),
  );

  app.get(
    '/devices/:id/bindings',
    { config: { permission: 'name:read' }, schema: { tags: ['devices'], params: IdParams, querystring: NoQuery, response: { 200: BindingList } } },
    async (req) => {
      await services.devices.get(req.params.id);
      return { bindings: await services.bindings.historyOfDevice(req.params.id) };
    },
  );

  app.get(
    '/devices/:id/name-at',
    { config: { permission: 'name:read' }, schema: { tags: ['devices'], params: IdParams, querystring: AtQuery, response: { 200: NameAt } } },
    async (req) => {
      const at = req.query.at === undefined ? Date.now() : Date.parse(req.query.at);
      await services.devices.get(req.params.id);
      const hit = await services.bindings.nameAtDevice(req.params.id, at);
      return { deviceId: req.params.id, at: new Date(at).toISOString(), name: hit?.name ?? null };
    },
  );
};

/** exactOptionalPropertyTypes: query objects carry explicit undefined for absent keys. */
export function stripUndefined<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as never;
}
