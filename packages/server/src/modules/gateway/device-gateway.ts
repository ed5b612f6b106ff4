import type { Logger } from 'pino';
import { iso, type Clock } from '../../context/clock.js';
import { systemContext } from '../../context/op-context.js';
import type { UnitOfWork } from '../../context/unit-of-work.js';
import type { RefusalLimiter } from '../auth/refusal-limiter.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { CaModule } from '../ca/ca-module.js';
import type { CommandService } from '../commands/command-service.js';
import { wirePayload } from '../commands/command-service.js';
import type { EventBus } from '../events/event-bus.js';
import type { CredentialResult, DeviceCredentials } from '../auth/device-credentials.js';
import type { IngestBatcher } from '../telemetry/ingest.js';
import type { Store } from '../../store/open-store.js';
import type { GatewayMetrics } from '../metrics/metrics.js';
import { createUpdateReports } from '../update-reports/index.js';
import { createGateway } from './gateway.js';
import { GatewayLog } from './gateway-log.js';
import { PresenceRecorder } from './presence-recorder.js';
import type { PublishRateStore } from './publish-rate.js';
import { RefusalAggregator } from './refusal-audit.js';
import type { AuthenticateContext, AuthenticateResult, Gateway } from './index.js';

export interface DeviceGatewayDeps {
  readonly store: Store;
  readonly uow: UnitOfWork;
  readonly audit: AuditLog;
  readonly bus: EventBus;
  readonly clock: Clock;
  readonly ca: CaModule;
  readonly credentials: DeviceCredentials;
  readonly ingest: IngestBatcher;
  readonly commands: CommandService;
  readonly limiter: RefusalLimiter;
  readonly logger: Logger;
  readonly listen: { host: string; port: number };
  readonly maxPayloadBytes: number;
  readonly maxPublishesPerSecond: number;
  readonly refusalAuditWindowMs: number;
  /** Measured-boot attestation (issue 13): containment and the connect requirement. */
  readonly attestation?: { contained(deviceId: string): string | null; admit(deviceId: string): Promise<string | null> };
  /** Cluster (issue 15): presence rows name this node; other nodes hear of sessions opened here. */
  readonly cluster?: { readonly nodeId: string; readonly publishRate?: PublishRateStore; opened(deviceId: string): void; closed(deviceId: string): void };
  readonly metrics?: GatewayMetrics;
}


/**
 * The MQTT engine wired to the fleet: who a connection is (an operational certificate from our CA,
 * current in the revocation view, its device in good standing; or a short-lived token signed with
 * the device's symmetric key), where its messages go, what it receives, and when it is cut off.
 */
export async function createDeviceGateway(d: DeviceGatewayDeps): Promise<{ gateway: Gateway; close(): Promise<void> }> {
  const presence = new PresenceRecorder(d.uow, d.logger, undefined, d.cluster?.nodeId ?? null);
  const updateReports = createUpdateReports({ uow: d.uow, logger: d.logger });
  // The certificate each live session authenticated with: a revocation of that serial cuts it.
  const sessionSerial = new Map<string, string>();
  const log = new GatewayLog(d.logger);
  // When the revocation behind each cut was written (epoch ms), until that session is gone.
  const cutStarted = new Map<string, number>();
  // `since`: when the revocation was written in its transaction, so the figure covers the durable
  // commit, the change feed and the close. Set before the call: a close reports its disconnect synchronously.
  const cut = (deviceId: string, since: number | undefined): void => {
    if (d.metrics !== undefined && since !== undefined && !cutStarted.has(deviceId) && gateway.isConnected(deviceId)) cutStarted.set(deviceId, since);
    gateway.disconnectDevice(deviceId, 'administrative');
  };
  // Refusals of an authenticated device: one audit row per device, code and window, with a count.
  const refusals = new RefusalAggregator(
    (r) =>
      d.audit.record(systemContext('gateway'), {
        action: 'gateway.refused',
        subject: r.subject,
        outcome: 'refused',
        code: r.code,
        detail: { count: r.count, windowStart: iso(r.windowStart), windowEnd: iso(r.windowEnd), lastAt: iso(r.lastAt), firstReason: r.firstDetail.slice(0, 300), source: r.source },
      }),
    (err) => d.logger.error({ err }, 'gateway refusal audit failed'),
    d.refusalAuditWindowMs,
  );

  const authenticate = async (ctx: AuthenticateContext): Promise<AuthenticateResult> => {
    let r: CredentialResult;
    if (ctx.peerCertificate !== undefined) r = await d.credentials.certificate(ctx.peerCertificate.serialNumber);
    else if (ctx.username !== undefined && ctx.password !== undefined) r = await d.credentials.token(ctx.username, ctx.password.toString('utf8'), 'mqtt');
    else return { ok: false, reason: 'not_authorized', detail: 'no client certificate and no token' };
    if (!r.ok) return { ok: false, reason: r.kind, detail: r.detail };
    // [MQTT-3.1.3-*]: the client identifier must be the authenticated device id, nothing else.
    if (ctx.clientId !== r.deviceId) return { ok: false, reason: 'identifier_rejected', detail: `client id ${ctx.clientId.slice(0, 64)} is not ${r.deviceId}` };
    // Issue 13: a policy may require an attestation younger than its maximum age before a connect.
    const refusedBy = d.attestation === undefined ? null : await d.attestation.admit(r.deviceId);
    if (refusedBy !== null) return { ok: false, reason: 'not_authorized', detail: refusedBy };
    if (r.serial !== null) sessionSerial.set(r.deviceId, r.serial);
    else sessionSerial.delete(r.deviceId);
    return { ok: true, deviceId: r.deviceId };
  };

  const gateway = await createGateway({
    listen: d.listen,
    limits: { maxPublishesPerSecond: d.maxPublishesPerSecond },
    ...(d.cluster?.publishRate === undefined ? {} : { publishRate: d.cluster.publishRate }),
    tls: {
      key: d.ca.tls.keyPem,
      cert: d.ca.tls.chainPem,
      ca: [d.ca.authorities.root(), ...d.ca.authorities.trusted('issuing')].map((a) => a.row.certificate_pem),
      requestCert: true,
      requireCert: false,
    },
    hooks: {
      authenticate,
      validate: (msg) => {
        if (msg.payload.length > d.maxPayloadBytes) return `payload of ${msg.payload.length} bytes over ${d.maxPayloadBytes}`;
        if (msg.kind === 'update') return updateReports.check(msg.payload);
        try {
          JSON.parse(msg.payload.toString('utf8'));
          return null;
        } catch {
          return 'payload is not JSON';
        }
      },
      accept: async (msg) => {
        if (msg.kind === 'update') return updateReports.accept(msg.deviceId, msg.payload, msg.receivedAt.getTime());
        await d.ingest.submit({
          deviceId: msg.deviceId,
          kind: msg.kind,
          ...(msg.commandId === undefined ? {} : { commandId: msg.commandId }),
          payload: msg.payload.toString('utf8'),
          receivedAt: msg.receivedAt.getTime(),
        });
      },
      pendingCommands: async (deviceId) => (await d.commands.takeFor(deviceId)).map((r) => ({ commandId: r.id, payload: wirePayload(r) })),
      onCommandAcked: async (deviceId, commandId) => d.commands.acked(deviceId, commandId),
      ...(d.attestation === undefined ? {} : { contained: d.attestation.contained }),
      onConnect: async (deviceId, info) => {
        log.connected(deviceId, info);
        d.cluster?.opened(deviceId);
        await presence.record({ deviceId, connected: true, remote: info.remoteAddress });
      },
      onDisconnect: async (deviceId, reason) => {
        log.disconnected(deviceId, reason);
        const started = cutStarted.get(deviceId);
        if (started !== undefined) {
          cutStarted.delete(deviceId);
          d.metrics?.revocationCut(Math.max(0, d.clock.now() - started) / 1000);
        }
        sessionSerial.delete(deviceId);
        d.cluster?.closed(deviceId);
        await presence.record({ deviceId, connected: false, remote: null, reason });
      },
      onRefusal: async (info) => {
        log.refused(info);
        d.metrics?.refusal(info.reason, info.deviceId !== undefined);
        if (info.deviceId !== undefined) {
          refusals.add({ ...info, deviceId: info.deviceId }, d.clock.now());
          return;
        }
        // Before authentication there is only a source address: entries bounded per source, so a
        // flood cannot grow the log without limit.
        const suppressed = d.limiter.take(`mqtt:${info.remoteAddress}`, d.clock.now());
        if (suppressed === null) return;
        await d.audit.record(systemContext('gateway'), {
          action: 'gateway.refused',
          subject: `source:${info.remoteAddress}`,
          outcome: 'refused',
          code: info.reason,
          detail: { reason: info.detail.slice(0, 300), source: info.remoteAddress, ...(suppressed > 0 ? { suppressedBefore: suppressed } : {}) },
        });
      },
      onError: (err, where) => d.logger.error({ err, where }, 'gateway hook failed'),
    },
  });

  // Revocation cuts live sessions: a revoked certificate, or a device revoked, suspended or retired.
  const unsubscribeView = d.ca.revocations.subscribe((c) => {
    if (c.status !== 'revoked') return;
    if (sessionSerial.get(c.deviceId) === c.serial) cut(c.deviceId, c.at);
  });
  const unsubscribeBus = d.bus.subscribe((e) => {
    const p = e.payload as { deviceId?: string; to?: string; nameId?: string };
    if (e.type === 'device.status_changed' && p.deviceId !== undefined && (p.to === 'revoked' || p.to === 'suspended' || p.to === 'retired')) {
      cut(p.deviceId, e.createdAt);
    }
    if (e.type === 'name.rebound' && p.nameId !== undefined) {
      const to = (e.payload as { to?: string }).to;
      void d.commands.retarget(p.nameId).then(async () => {
        if (to === undefined || !gateway.isConnected(to)) return;
        for (const r of await d.commands.takeFor(to)) gateway.sendCommand(to, r.id, wirePayload(r));
      });
    }
  });

  return {
    gateway,
    close: async () => {
      unsubscribeView();
      unsubscribeBus();
      await gateway.close();
      await refusals.close();
      // Records of the last disconnects and the last accepted messages land before the store closes.
      await presence.drain();
      await updateReports.close();
      await d.ingest.drain();
    },
  };
}
