/**
 * One device connection: framing, the connection state machine, bounded writes, backpressure and
 * teardown. Packet semantics live in the handler files. Listeners are shared functions that find
 * their connection through a symbol on the socket, so an idle connection costs one small object
 * and no closures or timers of its own (timeouts are enforced by the gateway-wide sweep).
 */
import type { Socket } from 'node:net';
import type { Packet } from 'mqtt-packet';
import { REASON_V5 } from '@fleetkey/protocol';
import type { GatewayCore } from './core.js';
import { decodeFrame, encode, frameLength, HEADER_INCOMPLETE, HEADER_MALFORMED, packetType, TYPE_CONNECT } from './frame-codec.js';
import { handlePacket, handleConnectFrame } from './dispatch.js';
import { checkConnect, checkFrame, connectLevel } from './frame-check.js';
import type { Session } from './sessions.js';
import type { DisconnectReason, ProtocolVersion, RefusalReason } from './types.js';
import type { OutboundCommands } from './commands.js';
import { deliverWill, type Will } from './will.js';

export const enum State {
  AwaitingConnect = 0,
  Authenticating = 1,
  Connected = 2,
  Closing = 3,
  Closed = 4,
}

const CONN = Symbol('fleetkey.gateway.connection');
type TaggedSocket = Socket & { [CONN]?: Connection };

/** A QoS 1 PUBLISH waiting for its store; PUBACKs leave in arrival order [MQTT-4.6.0-2]. */
export interface AckTicket {
  packetId: number;
  done: boolean;
}

export class Connection {
  state: State = State.AwaitingConnect;
  version: ProtocolVersion = 4;
  deviceId: string | undefined = undefined;
  clientId = '';
  readonly remoteAddress: string;
  readonly createdAt: number;
  lastActivity: number;
  closingSince = 0;
  keepAliveMs = 0;
  /** Bytes of an incomplete packet, or of packets not yet processed while reading is paused. */
  private pending: Buffer | undefined = undefined;
  paused = false;
  pendingStores = 0;
  readonly acks: AckTicket[] = [];
  /**
   * PUBLISHes the device sent while WE were not reading (backpressure): they arrive together on
   * resume and must not count as a burst against the device's rate limit.
   */
  backlogCredit = 0;
  pausedAt = 0;
  session: Session | undefined = undefined;
  out: OutboundCommands | undefined = undefined;
  /** v5 limits the device announced in CONNECT [MQTT-3.1.2.11]. */
  clientReceiveMaximum = 65_535;
  clientMaxPacketBytes = 268_435_460;
  will: Will | undefined = undefined;
  private corked = false;

  constructor(
    readonly socket: Socket,
    readonly core: GatewayCore,
    now: number,
  ) {
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    this.createdAt = now;
    this.lastActivity = now;
    (socket as TaggedSocket)[CONN] = this;
    socket.setNoDelay(true);
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  }

  // ---- reading -------------------------------------------------------------------------------

  feed(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending !== undefined) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    this.process(buf);
  }

  private mustWait(): boolean {
    return this.state === State.Authenticating || this.pendingStores >= this.core.limits.maxPendingStores;
  }

  /**
   * Every byte a peer sends goes through here, so this is where no fault may pass: whatever a
   * decoder, handler or encoder throws ends this connection only, audited, with 0x83 for v5.
   */
  private process(buf: Buffer): void {
    try {
      this.processFrames(buf);
    } catch (err) {
      this.fault(err, 'packet');
    }
  }

  /** An internal fault while serving this connection: report it, refuse, close; nothing else is touched. */
  fault(err: unknown, where: string): void {
    this.core.reportError(err, where);
    if (this.state >= State.Closing) return;
    try {
      this.protocolFailure('internal_error', `${where}: ${err instanceof Error ? err.message : String(err)}`, REASON_V5.implementationSpecificError);
    } catch {
      this.destroy('refused');
    }
  }

  private processFrames(buf: Buffer): void {
    const limits = this.core.limits;
    let off = 0;
    while (off < buf.length) {
      if (this.state >= State.Closing) return;
      if (this.mustWait()) break;
      const total = frameLength(buf, off);
      if (total === HEADER_MALFORMED) {
        this.protocolFailure('malformed_packet', 'remaining length longer than four bytes', REASON_V5.malformedPacket);
        return;
      }
      if (total === HEADER_INCOMPLETE) break;
      if (total > limits.maxPacketBytes) {
        // Refused from the fixed header alone, before the body is buffered [MQTT-3.2.2.3.6].
        this.protocolFailure('packet_too_large', `packet of ${total} bytes`, REASON_V5.packetTooLarge);
        return;
      }
      if (off + total > buf.length) break;
      const frame = buf.subarray(off, off + total);
      off += total;
      this.lastActivity = Date.now();
      this.onFrame(frame);
    }
    if (this.state >= State.Closing) return;
    // Copy the remainder so a small leftover never pins a whole 64 KiB socket chunk.
    if (off < buf.length) this.pending = Buffer.from(buf.subarray(off));
    // Pause as soon as the bound is reached, not on the next chunk.
    if (this.mustWait()) this.pauseReading();
  }

  private onFrame(frame: Buffer): void {
    if (this.state === State.AwaitingConnect) {
      // The first packet from the client MUST be CONNECT [MQTT-3.1.0-1].
      if (packetType(frame[0] as number) !== TYPE_CONNECT) {
        this.refuseAndClose('protocol_error', 'first packet is not CONNECT');
        return;
      }
      const violation = checkConnect(frame);
      if (violation !== undefined) {
        // v5: CONNACK with the reason, then close [MQTT-3.2.2-7]; v3.1.1: close without CONNACK
        // [MQTT-3.1.4-1]. The level byte is read from the frame: the CONNACK must be in its form.
        this.refuse(violation.reason, violation.detail);
        this.core.stats.connectsRefused++;
        if (connectLevel(frame) === 5) {
          this.version = 5;
          this.sendPacket({ cmd: 'connack', sessionPresent: false, reasonCode: violation.code });
        }
        this.close('refused');
        return;
      }
      const packet = decodeFrame(frame, 4);
      if (packet instanceof Error) {
        this.refuseAndClose('malformed_packet', packet.message);
        return;
      }
      this.state = State.Authenticating;
      this.core.stats.connecting++;
      handleConnectFrame(this, packet);
      return;
    }
    const violation = checkFrame(frame, this.version);
    if (violation !== undefined) {
      this.protocolFailure(violation.reason, violation.detail, violation.code);
      return;
    }
    const packet = decodeFrame(frame, this.version);
    if (packet instanceof Error) {
      // A malformed packet closes the connection [MQTT-4.8.0-1]; v5 says why first [MQTT-4.13.1-1].
      this.protocolFailure('malformed_packet', packet.message, REASON_V5.malformedPacket);
      return;
    }
    handlePacket(this, packet);
  }

  pauseReading(): void {
    if (this.paused || this.state >= State.Closing) return;
    this.paused = true;
    this.pausedAt = Date.now();
    this.core.stats.pausedConnections++;
    this.socket.pause();
  }

  /** Resumes after CONNACK or when stores drained below half the bound (hysteresis). */
  maybeResume(): void {
    if (!this.paused || this.state >= State.Closing) return;
    if (this.state === State.Authenticating) return;
    if (this.pendingStores > this.core.limits.maxPendingStores >> 1) return;
    this.paused = false;
    this.core.stats.pausedConnections--;
    // Time spent paused is the gateway's doing, not the device's silence.
    this.lastActivity = Date.now();
    // Credit what a device at the allowed rate could have sent meanwhile (capped at 10 s worth).
    const rate = this.core.limits.maxPublishesPerSecond;
    this.backlogCredit = Math.min(rate * 10, this.backlogCredit + ((this.lastActivity - this.pausedAt) * rate) / 1000);
    const pending = this.pending;
    this.pending = undefined;
    if (pending !== undefined) this.process(pending);
    if (!this.paused && this.state < State.Closing) this.socket.resume();
  }

  // ---- writing -------------------------------------------------------------------------------

  send(buf: Buffer): void {
    if (this.state >= State.Closing) return;
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) return;
    if (!this.corked) {
      this.corked = true;
      socket.cork();
      this.core.scheduleUncork(this);
    }
    socket.write(buf);
    // A client that does not read cannot make the gateway buffer without bound.
    if (socket.writableLength > this.core.limits.maxWriteBufferBytes) {
      this.destroy('write_buffer_overflow');
    }
  }

  sendPacket(packet: Packet): void {
    this.send(encode(packet, this.version));
  }

  uncork(): void {
    if (!this.corked) return;
    this.corked = false;
    if (!this.socket.destroyed) this.socket.uncork();
  }

  // ---- closing -------------------------------------------------------------------------------

  /** Closes after telling a v5 device why [MQTT-3.14.2-1]; a v3.1.1 device just sees the close. */
  close(reason: DisconnectReason, v5ReasonCode?: number): void {
    if (this.state >= State.Closing) return;
    if (v5ReasonCode !== undefined && this.version === 5 && this.state === State.Connected) {
      this.sendPacket({ cmd: 'disconnect', reasonCode: v5ReasonCode });
    }
    this.finish(reason);
    this.uncork();
    this.socket.end();
  }

  /** Immediate teardown, for when writing more is pointless. */
  destroy(reason: DisconnectReason): void {
    if (this.state < State.Closing) this.finish(reason);
    this.state = State.Closed;
    this.socket.destroy();
  }

  /** Refusal before or at CONNECT: audit it, then close without a word. */
  refuseAndClose(reason: RefusalReason, detail: string): void {
    this.refuse(reason, detail);
    this.close('refused');
  }

  refuse(reason: RefusalReason, detail: string): void {
    this.core.refuse({
      ...(this.deviceId !== undefined ? { deviceId: this.deviceId } : {}),
      remoteAddress: this.remoteAddress,
      reason,
      detail,
    });
  }

  /** A protocol violation after CONNECT: audit, v5 DISCONNECT with `code`, close. */
  protocolFailure(reason: RefusalReason, detail: string, code: number): void {
    this.refuse(reason, detail);
    if (this.state === State.Connected) this.close('refused', code);
    else this.close('refused');
  }

  private finish(reason: DisconnectReason): void {
    const wasConnecting = this.state === State.Authenticating;
    const wasConnected = this.state === State.Connected;
    this.state = State.Closing;
    this.closingSince = Date.now();
    const core = this.core;
    if (wasConnecting) core.stats.connecting--;
    if (this.paused) {
      this.paused = false;
      core.stats.pausedConnections--;
    }
    this.pending = undefined;
    const deviceId = this.deviceId;
    if (!wasConnected || deviceId === undefined) return;
    core.stats.connections--;
    core.stats.disconnects++;
    if (core.devices.get(deviceId) === this) core.devices.delete(deviceId);
    if (this.session !== undefined) core.sessions.release(deviceId, this.session, this.closingSince);
    // [MQTT-3.1.2-8] publishes the Will of a connection that ends without DISCONNECT, but not one
    // the server cut for revocation (a revoked certificate, a device revoked, suspended or retired
    // end it as 'administrative' or 'revoked'): that would store a message from a revoked identity
    // after its revocation. [MQTT-3.1.2-10]: the Will is discarded either way.
    if (this.will !== undefined && reason !== 'client_disconnect' && reason !== 'administrative' && reason !== 'revoked') deliverWill(this, this.will);
    this.will = undefined;
    const hook = core.hooks.onDisconnect;
    if (hook !== undefined) {
      try {
        void Promise.resolve(hook(deviceId, reason)).catch((err: unknown) => core.reportError(err, 'onDisconnect'));
      } catch (err) {
        core.reportError(err, 'onDisconnect');
      }
    }
  }

  /** Called by the socket's close event: whatever ended it, release everything. */
  closed(): void {
    if (this.state < State.Closing) this.finish('socket_closed');
    this.state = State.Closed;
    this.core.conns.delete(this);
    delete (this.socket as TaggedSocket)[CONN];
  }
}

function onData(this: TaggedSocket, chunk: Buffer): void {
  this[CONN]?.feed(chunk);
}

function onError(this: TaggedSocket): void {
  // ECONNRESET and friends: 'close' follows and does the bookkeeping.
}

function onClose(this: TaggedSocket): void {
  this[CONN]?.closed();
}
