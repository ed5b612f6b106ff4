import { Agent, request } from 'node:https';
import { PassThrough } from 'node:stream';
import { BaseFetcher } from 'tuf-js';
import { DownloadHTTPError } from 'tuf-js/dist/error.js';

/** TLS material of the device: the bundle's CA file (never the system store) and the operational identity. */
export interface DeviceTls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string | Buffer;
}

/**
 * tuf-js's fetcher over the device's mTLS identity (the device plane answers only to a device
 * certificate of ours; the director knows the device from it). tuf-js bounds every read itself
 * (BaseFetcher.downloadFile stops at the metadata's max length: TUF 1.0 §5.2, endless data);
 * this class only opens streams. A non-2xx answer is a DownloadHTTPError so tuf-js's root loop
 * (§5.3.3: fetch N+1.root.json until 404) works as with its own fetcher.
 */
export class MtlsFetcher extends BaseFetcher {
  readonly #agent: Agent;

  constructor(tls: DeviceTls, private readonly timeoutMs = 30_000) {
    super();
    this.#agent = new Agent({ keepAlive: true, maxSockets: 2, ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: true, minVersion: 'TLSv1.2' });
  }

  get agent(): Agent {
    return this.#agent;
  }

  fetch(url: string): Promise<NodeJS.ReadableStream> {
    return new Promise((resolve, reject) => {
      const req = request(url, { method: 'GET', agent: this.#agent, timeout: this.timeoutMs, headers: { accept: 'application/json' } }, (res) => {
        const status = res.statusCode ?? 0;
        if (status !== 200) {
          res.resume();
          reject(new DownloadHTTPError(`UPDATE_FETCH_FAILED: HTTP ${status} for ${new URL(url).pathname}`, status));
          return;
        }
        // Re-piped so a socket error mid-body surfaces as a stream error tuf-js sees.
        const out = new PassThrough();
        res.on('error', (err) => out.destroy(err));
        res.pipe(out);
        resolve(out);
      });
      req.on('timeout', () => req.destroy(new Error(`UPDATE_FETCH_FAILED: no answer within ${this.timeoutMs} ms`)));
      req.on('error', (err) => reject(new Error(`UPDATE_FETCH_FAILED: ${(err as NodeJS.ErrnoException).code ?? err.message}`)));
      req.end();
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}
