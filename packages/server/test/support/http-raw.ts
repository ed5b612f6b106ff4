import { connect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/**
 * Sends bytes exactly as given over a plain TCP socket (or TLS, for an https URL, trusting `ca`)
 * and reads the answer until the server closes: for requests fetch() refuses to send (oversized
 * headers, bad request lines, stalls).
 */
export function rawHttp(url: string, request: string | Buffer, options: { idleMs?: number; ca?: string } = {}): Promise<RawResponse> {
  const { hostname, port, protocol } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket =
      protocol === 'https:'
        ? tlsConnect({ host: hostname, port: Number(port), servername: hostname === '127.0.0.1' ? undefined : hostname, ...(options.ca === undefined ? {} : { ca: options.ca }) })
        : connect({ host: hostname, port: Number(port) });
    const chunks: Buffer[] = [];
    socket.setTimeout(options.idleMs ?? 10_000, () => socket.destroy(new Error('no answer')));
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', (e) => (chunks.length > 0 ? undefined : reject(e)));
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const sep = text.indexOf('\r\n\r\n');
      if (sep < 0) return reject(new Error(`no HTTP answer: ${JSON.stringify(text.slice(0, 200))}`));
      const [statusLine = '', ...lines] = text.slice(0, sep).split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      let body = text.slice(sep + 4);
      const length = headers['content-length'];
      if (length !== undefined) body = body.slice(0, Number(length));
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
    });
    socket.once(protocol === 'https:' ? 'secureConnect' : 'connect', () => {
      socket.write(request);
    });
  });
}
