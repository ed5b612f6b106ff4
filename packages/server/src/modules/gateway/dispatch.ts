/** Routes a decoded packet to its handler by type and connection state. */
import type { Packet } from 'mqtt-packet';
import { REASON_V5 } from '@fleetkey/protocol';
import type { Connection } from './connection.js';
import { handleCommandPuback } from './commands.js';
import { handleConnect } from './connect-handler.js';
import { PINGRESP } from './frame-codec.js';
import { handlePublish } from './publish-handler.js';
import { MAX_EXPIRY_SECONDS } from './sessions.js';
import { handleSubscribe, handleUnsubscribe } from './subscribe-handler.js';

export function handleConnectFrame(conn: Connection, packet: Packet): void {
  if (packet.cmd !== 'connect') {
    conn.refuseAndClose('protocol_error', 'first packet is not CONNECT');
    return;
  }
  handleConnect(conn, packet);
}

export function handlePacket(conn: Connection, packet: Packet): void {
  switch (packet.cmd) {
    case 'publish':
      handlePublish(conn, packet);
      return;
    case 'puback':
      handleCommandPuback(conn, packet);
      return;
    case 'pingreq':
      conn.send(PINGRESP); // [MQTT-3.12.4-1]
      return;
    case 'subscribe':
      handleSubscribe(conn, packet);
      return;
    case 'unsubscribe':
      handleUnsubscribe(conn, packet);
      return;
    case 'disconnect': {
      const expiry = packet.properties?.sessionExpiryInterval;
      const session = conn.session;
      if (conn.version === 5 && expiry !== undefined && session !== undefined) {
        // Raising the expiry from 0 at DISCONNECT is a protocol error [MQTT-3.14.2-2].
        if (session.expirySeconds === 0 && expiry > 0) {
          conn.protocolFailure('protocol_error', 'session expiry raised from 0', REASON_V5.protocolError);
          return;
        }
        session.expirySeconds = Math.min(expiry, MAX_EXPIRY_SECONDS);
      }
      // v5 0x04 "Disconnect with Will Message" keeps the Will; any other DISCONNECT discards it
      // [MQTT-3.14.4-3].
      if (conn.version === 5 && packet.reasonCode === 0x04) {
        conn.close('socket_closed');
        return;
      }
      conn.will = undefined;
      conn.close('client_disconnect');
      return;
    }
    case 'connect':
      // A second CONNECT is a protocol violation [MQTT-3.1.0-2].
      conn.protocolFailure('protocol_error', 'second CONNECT', REASON_V5.protocolError);
      return;
    default:
      // QoS 2 flow packets, AUTH (no enhanced auth offered) and server-to-client packets.
      conn.protocolFailure('protocol_error', `unexpected ${packet.cmd}`, REASON_V5.protocolError);
  }
}
