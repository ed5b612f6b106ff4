import { request } from 'node:https';

/**
 * POSTs JSON over HTTPS with an optional client certificate: how a device calls the device plane.
 * `raw` sends that text as the body instead (hostile input), under `contentType` if given;
 * `localAddress` picks the source address (another 127.x.y.z: another source for rate limits).
 */
export function mtlsPost(url: string, body: unknown, o: { ca: string; cert?: string; key?: string; raw?: string; contentType?: string; localAddress?: string }): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const data = o.raw ?? JSON.stringify(body);
    const req = request(
      url,
      {
        method: 'POST',
        ca: o.ca,
        ...(o.cert === undefined ? {} : { cert: o.cert }),
        ...(o.key === undefined ? {} : { key: o.key }),
        ...(o.localAddress === undefined ? {} : { localAddress: o.localAddress }),
        headers: { 'content-type': o.contentType ?? 'application/json', 'content-length': Buffer.byteLength(data) },
        agent: false,
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text === '' ? null : JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}
