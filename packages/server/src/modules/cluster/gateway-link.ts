import type { Logger } from 'pino';
import type { CommandService } from '../commands/command-service.js';
import { wirePayload } from '../commands/command-service.js';
import type { Gateway } from '../gateway/index.js';
import type { ClusterBus } from './cluster-bus.js';
import type { ClusterPublishRate } from './cluster-publish-rate.js';

/**
 * What the gateway of one node must hear from the others.
 *  - Session takeover across nodes [MQTT-3.1.4-3]: "If the ClientId represents a Client already
 *    connected to the Server then the Server MUST disconnect the existing Client". A node that
 *    accepts a device announces it; a node holding an older session of that device closes it with
 *    0x8E. "Older" is by the announcing node's clock against ours (the sessions of one device are
 *    seconds apart, node clocks NTP-close), so a late announcement cannot cut a newer session here.
 *    This is the one bus message acted on without a store read: a forged one could only cut a
 *    session the device re-opens — the bus must be reachable by the nodes only (docs/cluster.md).
 *  - Commands: a command stored on any node is announced by its name; each node asks the store
 *    whether it holds that name's device and, if so, pushes it. Pending commands live in the store
 *    until acknowledged, so a node lost mid-delivery loses none: the device gets them on reconnect.
 */
export class GatewayLink {
  readonly #since = new Map<string, number>(); // device id → when its session here opened
  readonly #unsubscribe: (() => void)[] = [];

  constructor(
    private readonly bus: ClusterBus,
    private readonly gateway: Gateway,
    private readonly commands: CommandService,
    private readonly logger: Logger,
    private readonly now: () => number,
    private readonly rate: ClusterPublishRate,
  ) {
    this.#unsubscribe.push(
      bus.subscribe('session', (_from, body) => {
        if (body.kind !== 'session') return;
        const mine = this.#since.get(body.deviceId);
        if (mine === undefined || mine > body.at) return;
        this.#since.delete(body.deviceId);
        gateway.disconnectDevice(body.deviceId, 'takeover');
        // The device's allowance follows it: moving cannot buy a fresh burst.
        const b = this.rate.export(body.deviceId, this.now());
        this.bus.publish({ kind: 'rate', deviceId: body.deviceId, tokens: b.tokens, at: b.at });
      }),
      bus.subscribe('rate', (_from, body) => {
        if (body.kind === 'rate') this.rate.merge(body.deviceId, body.tokens, body.at);
      }),
      bus.subscribe('command', (_from, body) => {
        if (body.kind === 'command') this.push(body.nameId);
      }),
    );
  }

  /** The gateway accepted a device here: older sessions on other nodes end. */
  opened(deviceId: string): void {
    const at = this.now();
    this.#since.set(deviceId, at);
    this.bus.publish({ kind: 'session', deviceId, at });
  }

  closed(deviceId: string): void {
    this.#since.delete(deviceId);
  }

  /** A command was stored here: every node (this one included) pushes it if it holds the device. */
  commandSent(nameId: string): void {
    this.bus.publish({ kind: 'command', nameId });
    this.push(nameId);
  }

  push(nameId: string): void {
    void (async () => {
      const holder = await this.commands.holderOf(nameId);
      if (holder === null || !this.gateway.isConnected(holder)) return;
      for (const r of await this.commands.takeFor(holder)) this.gateway.sendCommand(holder, r.id, wirePayload(r));
    })().catch((err: unknown) => this.logger.error({ err }, 'command push failed'));
  }

  close(): void {
    for (const u of this.#unsubscribe) u();
  }
}
