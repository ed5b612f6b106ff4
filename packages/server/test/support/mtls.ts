import { request } from 'node:https';

/** POSTs JSON over HTTPS with an optional client certificate: how a device calls the device plane. */
export function mtlsPost(url: string, body: unknown, o: { ca: string; cert?: string; key?: string }): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = request(
      url,
      {
        method: 'POST',
        ca: o.ca,
        ...(o.cert === undefined ? {} : { cert: o.cert }),
        ...(o.key === undefined ? {} : { key: o.key }),
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
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
