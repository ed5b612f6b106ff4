/** Issue 14: `GET /v1/names?tag=k=v&after=…` (behind `fleetkey name list --tag --after`), on both stores. */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DIALECTS } from '../support/databases.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

describe.each(DIALECTS)('name list filters (%s)', (dialect) => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer(dialect);
    const names: [string, Record<string, string>][] = [
      ['a-01', { line: '03', site: 'plant-1' }],
      ['a-02', { line: '04', site: 'plant-1' }],
      ['a-03', { line: '03', site: 'plant-2' }],
      ['a-04', { line_x: '03' }],
      ['a-05', { lineax: '03' }],
      ['a-06', { line: '03' }],
    ];
    for (const [name, tags] of names) expect((await t.call('POST', '/v1/names', { body: { name, tags } })).status).toBe(201);
  });
  afterAll(async () => t?.stop());

  const list = async (q: string) => {
    const r = await t.call('GET', `/v1/names?${q}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return (r.body.names as { name: string }[]).map((n) => n.name);
  };

  test('--tag keeps the names carrying exactly that tag; --after pages through them', async () => {
    expect(await list('tag=line%3D03')).toEqual(['a-01', 'a-03', 'a-06']);
    expect(await list('tag=site%3Dplant-1')).toEqual(['a-01', 'a-02']);
    expect(await list('tag=line%3D03&limit=2')).toEqual(['a-01', 'a-03']);
    expect(await list('tag=line%3D03&limit=2&after=a-03')).toEqual(['a-06']);
    expect(await list('after=a-04')).toEqual(['a-05', 'a-06']);
    expect(await list('tag=line%3D0')).toEqual([]);
  });

  test('fail: LIKE wildcards in a tag match only themselves (line_x is not lineax)', async () => {
    expect(await list('tag=line_x%3D03')).toEqual(['a-04']);
  });

  test.each(['tag=line', 'tag=line%3D03%25', "tag=line%3D'03", 'tag=Line%3D03', 'tag=line%3D03&tag=site%3Dplant-1'])('fail: a malformed tag filter is refused (%s)', async (q) => {
    const r = await t.call('GET', `/v1/names?${q}`);
    expect(r.status).toBe(400);
  });
});
