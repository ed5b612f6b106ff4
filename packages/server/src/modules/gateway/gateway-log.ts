import type { Logger } from 'pino';
import type { ConnectInfo, DisconnectReason, RefusalInfo } from './types.js';

// A refusal's detail can quote what the peer sent (a client id, a username): anything shaped like
// a credential is cut before it reaches a log line, which outlives every token's lifetime.
const OPERATOR_TOKEN = /fkt_[A-Za-z0-9_-]*/g;
const JWT = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*/g;
const SAS_SIG = /\bsig=[^&\s]*/gi;

export function scrubDetail(text: string): string {
  return text.slice(0, 300).replace(OPERATOR_TOKEN, 'fkt_[redacted]').replace(JWT, '[jwt redacted]').replace(SAS_SIG, 'sig=[redacted]');
}

/**
 * The gateway's log lines, in the same pino form as the HTTP request lines (one JSON object per
 * event, `component` naming the listener): connect, refusal with its reason, disconnect. Never a
 * password, token or payload; the remote address and the authenticated device id only.
 */
export class GatewayLog {
  readonly #log: Logger;

  constructor(logger: Logger) {
    this.#log = logger.child({ component: 'gateway' });
  }

  connected(deviceId: string, info: ConnectInfo): void {
    this.#log.info({ event: 'connect', deviceId, remoteAddress: info.remoteAddress, protocolVersion: info.protocolVersion, keepAliveSeconds: info.keepAliveSeconds }, 'device connected');
  }

  refused(info: RefusalInfo): void {
    this.#log.info(
      { event: 'refusal', reason: info.reason, remoteAddress: info.remoteAddress, ...(info.deviceId === undefined ? {} : { deviceId: info.deviceId }), detail: scrubDetail(info.detail) },
      'device refused',
    );
  }

  disconnected(deviceId: string, reason: DisconnectReason): void {
    this.#log.info({ event: 'disconnect', deviceId, reason }, 'device disconnected');
  }
}
