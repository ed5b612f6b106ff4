/**
 * CONNECT → authenticate → CONNACK. Reading stays paused from CONNECT until the CONNACK is sent,
 * so packets a client pipelines behind its CONNECT wait in order instead of racing the hook.
 */
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { IConnackPacket, IConnectPacket } from 'mqtt-packet';
import { CONNACK_V4, isDeviceId, MQTT_LIMITS, REASON_V5 } from '@fleetkey/protocol';
import { Connection, State } from './connection.js';
import { deliverPending } from './commands.js';
import { MAX_EXPIRY_SECONDS } from './sessions.js';
import type { AuthenticateContext, AuthenticateResult, AuthRefusalReason, RefusalReason } from './types.js';
import { checkWill } from './will.js';

const V4_CODES: Record<AuthRefusalReason, number> = {
  not_authorized: CONNACK_V4.notAuthorized,
  bad_credentials: CONNACK_V4.badUsernameOrPassword,
  identifier_rejected: CONNACK_V4.identifierRejected,
  server_unavailable: CONNACK_V4.serverUnavailable,
};
const V5_CODES: Record<AuthRefusalReason, number> = {
  not_authorized: REASON_V5.notAuthorized,
  bad_credentials: REASON_V5.badUserNameOrPassword,
  identifier_rejected: REASON_V5.clientIdentifierNotValid,
  server_unavailable: REASON_V5.serverUnavailable,
};

export function handleConnect(conn: Connection, packet: IConnectPacket): void {
  conn.pauseReading();
  const version = packet.protocolVersion;
  if (version !== 4 && version !== 5) {
    // [MQTT-3.1.2-2]: unsupported level → CONNACK 0x01 (v3.1.1 form), then close.
    conn.version = 4;
    refuseConnect(conn, 'unsupported_protocol_version', `protocol level ${String(version)}`, CONNACK_V4.unacceptableProtocolVersion, 0);
    return;
  }
  conn.version = version;
  conn.clientId = packet.clientId;
  const props = packet.properties;
  if (version === 5 && props?.authenticationMethod !== undefined) {
    // Enhanced authentication (AUTH exchange) is not offered [MQTT-3.1.2.11.9].
    refuseConnect(conn, 'bad_authentication_method', 'enhanced auth requested', 0, REASON_V5.badAuthenticationMethod);
    return;
  }
  authenticateAndAccept(conn, packet).catch((err: unknown) => conn.fault(err, 'connect'));
}

async function authenticateAndAccept(conn: Connection, packet: IConnectPacket): Promise<void> {
  const core = conn.core;
  const version = conn.version;
  const ctx: AuthenticateContext = {
    clientId: packet.clientId,
    protocolVersion: version,
    remoteAddress: conn.remoteAddress,
  };
  if (packet.username !== undefined) ctx.username = packet.username;
  if (packet.password !== undefined) ctx.password = packet.password;
  const cert = peerCertificate(conn);
  if (cert !== undefined) ctx.peerCertificate = cert;

  let result: AuthenticateResult;
  try {
    result = await core.hooks.authenticate(ctx);
  } catch (err) {
    core.reportError(err, 'authenticate');
    result = { ok: false, reason: 'server_unavailable', detail: 'authenticate hook failed' };
  }
  if (conn.state !== State.Authenticating) return; // socket closed or timed out meanwhile
  if (!result.ok) {
    refuseConnect(conn, result.reason, result.detail, V4_CODES[result.reason], V5_CODES[result.reason]);
    return;
  }
  const deviceId = result.deviceId;
  // The MQTT client id must equal the authenticated device id (DESIGN §3): a device cannot speak
  // under another identity, and an empty id is never assigned one [MQTT-3.1.3-8].
  if (!isDeviceId(deviceId) || packet.clientId !== deviceId) {
    conn.deviceId = isDeviceId(deviceId) ? deviceId : undefined;
    refuseConnect(
      conn,
      'client_id_mismatch',
      'client id differs from the authenticated device id',
      CONNACK_V4.identifierRejected,
      REASON_V5.clientIdentifierNotValid,
    );
    return;
  }
  conn.deviceId = deviceId;
  const will = checkWill(packet, deviceId, core.limits.maxTopicLength);
  if ('refusal' in will) {
    refuseConnect(conn, will.refusal, will.detail, will.v4, will.v5);
    return;
  }
  if (will.will !== undefined) {
    // The Will's payload passes the same content check as a PUBLISH (JSON, size), now: a Will is
    // stored when the device is gone, so a bad one would be stored unchecked.
    const w = will.will;
    const invalid = core.hooks.validate?.({
      deviceId,
      kind: w.kind,
      ...(w.commandId !== undefined ? { commandId: w.commandId } : {}),
      payload: w.payload,
      qos: w.qos,
      receivedAt: new Date(),
    }) ?? null;
    if (invalid !== null) {
      // v5: CONNACK 0x99 Payload format invalid (§3.2.2.2); v3.1.1 has no code for it: close
      // without CONNACK [MQTT-3.1.4-1].
      if (version === 5) refuseConnect(conn, 'payload_invalid', `will: ${invalid}`, 0, REASON_V5.payloadFormatInvalid);
      else refuseSilently(conn, 'payload_invalid', `will: ${invalid}`);
      return;
    }
  }
  if (core.closing) {
    refuseConnect(conn, 'server_unavailable', 'gateway closing', CONNACK_V4.serverUnavailable, REASON_V5.serverUnavailable);
    return;
  }
  conn.will = will.will;

  // Session takeover: the existing connection of this device is closed first [MQTT-3.1.4-3]; a v5
  // device is told 0x8E Session taken over [MQTT-3.14.2.1].
  const previous = core.devices.get(deviceId);
  if (previous !== undefined && previous !== conn) previous.close('takeover', REASON_V5.sessionTakenOver);

  const props = packet.properties;
  const clean = packet.clean !== false;
  let expiry: number;
  if (version === 5) expiry = props?.sessionExpiryInterval ?? 0;
  else expiry = clean ? 0 : MAX_EXPIRY_SECONDS;
  const now = Date.now();
  const { session, present } = core.sessions.open(deviceId, clean, expiry, now);
  conn.session = session;
  if (version === 5) {
    if (props?.receiveMaximum !== undefined) conn.clientReceiveMaximum = props.receiveMaximum;
    if (props?.maximumPacketSize !== undefined) conn.clientMaxPacketBytes = props.maximumPacketSize;
  }

  // Keep-alive: 0 (disabled) or above the ceiling is replaced by the ceiling; a v5 device is told
  // through Server Keep Alive [MQTT-3.2.2-21], a v3.1.1 device cannot be and simply gets it enforced.
  const maxKa = core.limits.maxKeepAliveSeconds;
  const asked = packet.keepalive ?? MQTT_LIMITS.defaultKeepAliveSeconds;
  const effective = asked === 0 || asked > maxKa ? maxKa : asked;
  conn.keepAliveMs = effective * 1000;

  const connack: IConnackPacket = { cmd: 'connack', sessionPresent: present };
  if (version === 5) {
    connack.reasonCode = REASON_V5.success;
    connack.properties = {
      receiveMaximum: core.limits.receiveMaximum,
      maximumQoS: 1, // QoS 2 refused up front [MQTT-3.2.2-9]
      retainAvailable: false,
      maximumPacketSize: core.limits.maxPacketBytes,
      topicAliasMaximum: 0,
      wildcardSubscriptionAvailable: true,
      subscriptionIdentifiersAvailable: false,
      sharedSubscriptionAvailable: false,
      ...(effective !== asked ? { serverKeepAlive: effective } : {}),
    };
  } else {
    connack.returnCode = CONNACK_V4.accepted;
  }
  conn.state = State.Connected;
  core.stats.connecting--;
  core.stats.connections++;
  core.stats.connectsAccepted++;
  core.devices.set(deviceId, conn);
  conn.lastActivity = now;
  conn.sendPacket(connack);

  const onConnect = core.hooks.onConnect;
  if (onConnect !== undefined) {
    const info = { protocolVersion: version, remoteAddress: conn.remoteAddress, clientId: packet.clientId, keepAliveSeconds: effective, sessionPresent: present };
    try {
      void Promise.resolve(onConnect(deviceId, info)).catch((err: unknown) => core.reportError(err, 'onConnect'));
    } catch (err) {
      core.reportError(err, 'onConnect');
    }
  }
  // A resumed session already holds the command subscription: redeliver without waiting for a
  // SUBSCRIBE the device will not send [MQTT-4.4.0-1].
  if (present && session.subscribedQos >= 0) deliverPending(conn, true);
  conn.maybeResume();
}

/** CONNACK with a non-zero code, then close [MQTT-3.2.2-5]; the reason goes to the audit hook only. */
function refuseConnect(conn: Connection, reason: RefusalReason, detail: string, v4Code: number, v5Code: number): void {
  const core = conn.core;
  core.stats.connectsRefused++;
  conn.refuse(reason, detail);
  // Session Present is 0 on any refusal [MQTT-3.2.2-4].
  if (conn.version === 5) conn.sendPacket({ cmd: 'connack', sessionPresent: false, reasonCode: v5Code });
  else conn.sendPacket({ cmd: 'connack', sessionPresent: false, returnCode: v4Code });
  conn.close('refused');
}

/** v3.1.1 refusal with no CONNACK code that fits: audited, then closed without a word. */
function refuseSilently(conn: Connection, reason: RefusalReason, detail: string): void {
  conn.core.stats.connectsRefused++;
  conn.refuseAndClose(reason, detail);
}

function peerCertificate(conn: Connection): PeerCertificate | undefined {
  const socket = conn.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  // Never hand the hook a certificate the TLS layer did not verify (optional-certificate mode).
  if (socket.authorized !== true) return undefined;
  const cert = socket.getPeerCertificate(false);
  // An empty object means no certificate (Node's legacy API).
  return typeof cert.serialNumber === 'string' ? cert : undefined;
}
