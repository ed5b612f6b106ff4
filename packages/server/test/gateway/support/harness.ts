/**
 * Starts a real gateway on 127.0.0.1:0 over mTLS with in-test collaborators: authenticate maps the
 * verified client certificate's CN to a device id, accept stores into an array (optionally held
 * back by a gate), pendingCommands reads a map that onCommandAcked updates.
 */
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import { createGateway, type AcceptedMessage, type AuthenticateContext, type AuthenticateResult, type DisconnectReason, type Gateway, type GatewayLimits, type PendingCommand, type RefusalInfo } from '../../../src/modules/gateway/index.js';
import { deviceIdentity, type Identity, type Pki } from './pki.js';

export interface Harness {
  gw: Gateway;
  port: number;
  accepted: AcceptedMessage[];
  refusals: RefusalInfo[];
  disconnects: { deviceId: string; reason: DisconnectReason }[];
  acked: { deviceId: string; commandId: string; reasonCode: number }[];
  /** The store's pending commands per device. */
  pending: Map<string, PendingCommand[]>;
  /** Per-device forced authentication refusals. */
  authOverride: Map<string, AuthenticateResult>;
  authCalls: AuthenticateContext[];
  /** When set, accept() waits on it: lets a test hold stores back. */
  gate: { promise: Promise<void>; open: () => void } | undefined;
  holdStores(): void;
  releaseStores(): void;
  inFlightAccepts: number;
  /** Optional per-message store latency (ms). */
  delayFor: ((msg: AcceptedMessage) => number) | undefined;
  maxInFlightAccepts: number;
  /** Optional content check (the validate hook); may throw, to stand for a collaborator's fault. */
  validate: ((msg: AcceptedMessage) => string | null) | undefined;
  close(): Promise<void>;
}

export async function startHarness(pki: Pki, limits: Partial<GatewayLimits> = {}): Promise<Harness> {
  const h = {
    accepted: [],
    refusals: [],
    disconnects: [],
    acked: [],
    pending: new Map(),
    authOverride: new Map(),
    authCalls: [],
    gate: undefined,
    inFlightAccepts: 0,
    maxInFlightAccepts: 0,
  } as unknown as Harness;
  h.holdStores = () => {
    let open!: () => void;
    const promise = new Promise<void>((r) => (open = r));
    h.gate = { promise, open };
  };
  h.releaseStores = () => {
    const g = h.gate;
    h.gate = undefined;
    g?.open();
  };
  h.gw = await createGateway({
    listen: { host: '127.0.0.1', port: 0 },
    tls: { key: pki.server.key, cert: pki.server.cert, ca: [pki.ca], requestCert: true },
    limits,
    hooks: {
      async authenticate(ctx) {
        h.authCalls.push(ctx);
        // One CN in our test certificates; Node's plain form types it as string | string[].
        const cn = [ctx.peerCertificate?.subject.CN].flat()[0];
        if (cn === undefined) return { ok: false, reason: 'not_authorized', detail: 'no client certificate' };
        return h.authOverride.get(cn) ?? { ok: true, deviceId: cn };
      },
      validate(msg) {
        return h.validate?.(msg) ?? null;
      },
      async accept(msg) {
        h.inFlightAccepts++;
        h.maxInFlightAccepts = Math.max(h.maxInFlightAccepts, h.inFlightAccepts);
        try {
          while (h.gate !== undefined) await h.gate.promise;
          const delay = h.delayFor?.(msg) ?? 0;
          if (delay > 0) await new Promise((r) => setTimeout(r, delay));
          h.accepted.push(msg);
        } finally {
          h.inFlightAccepts--;
        }
      },
      async pendingCommands(deviceId) {
        return [...(h.pending.get(deviceId) ?? [])];
      },
      async onCommandAcked(deviceId, commandId, reasonCode) {
        h.acked.push({ deviceId, commandId, reasonCode });
        const list = h.pending.get(deviceId) ?? [];
        h.pending.set(deviceId, list.filter((c) => c.commandId !== commandId));
      },
      onDisconnect(deviceId, reason) {
        h.disconnects.push({ deviceId, reason });
      },
      onRefusal(info) {
        h.refusals.push(info);
      },
      onError(err, where) {
        if (where !== 'accept') console.error('gateway hook error', where, err);
      },
    },
  });
  h.port = h.gw.address().port;
  h.close = () => h.gw.close();
  return h;
}

export function clientOptions(pki: Pki, id: string, version: 4 | 5, extra: Partial<IClientOptions> = {}, identity?: Identity): IClientOptions {
  const ident = identity ?? deviceIdentity(pki, id);
  return {
    protocolVersion: version,
    clientId: id,
    ca: pki.ca,
    cert: ident.cert,
    key: ident.key,
    servername: 'localhost',
    rejectUnauthorized: true,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...extra,
  };
}

export function connectDevice(h: Harness, pki: Pki, id: string, version: 4 | 5, extra: Partial<IClientOptions> = {}, identity?: Identity): Promise<MqttClient> {
  return connectAsync(`mqtts://127.0.0.1:${h.port}`, clientOptions(pki, id, version, extra, identity), false);
}

export async function until(cond: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function endClient(c: MqttClient): Promise<void> {
  await c.endAsync().catch(() => undefined);
}
