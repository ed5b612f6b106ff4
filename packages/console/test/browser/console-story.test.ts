import { createServer as createHttpServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chromiumAvailable } from '../support/browser.js';
import { NAME, StoryFixture } from '../support/story-fixture.js';

describe.skipIf(!chromiumAvailable())('web console in Debian chromium: the robot replacement story, roles, CSRF', () => {
  const f = new StoryFixture();
  beforeAll(() => f.start(), 120_000);
  afterAll(() => f.stop());

  test('an operator replaces the robot entirely through the console: old device revoked, timeline updated, new data on the name plot', async () => {
    const page = await f.browser.context.newPage();
    await f.signIn(page, f.tokens['operator']!);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Names' }).click();
    await page.getByRole('link', { name: NAME }).click();
    await expect.poll(() => page.getByTestId('name-chart').getAttribute('data-series')).toBe(`device ${f.a.id.slice(0, 8)}`);

    await page.getByLabel('Replacement device id').fill(f.b.id);
    expect(await page.getByLabel('Revoke the old device').isChecked()).toBe(true);
    await page.getByRole('button', { name: /Replace device/ }).click();
    const dialog = page.getByRole('dialog');
    await expect.poll(() => dialog.textContent()).toContain('The old device is revoked');
    await dialog.getByRole('button', { name: 'Replace', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'the old device is revoked' }).waitFor();
    expect(await f.holder()).toBe(f.b.id);

    // The timeline: A held it until now, B holds it from now.
    const timeline = page.getByTestId('timeline');
    await expect.poll(() => timeline.locator('li').count()).toBe(2);
    expect(await timeline.locator('li').last().textContent()).toContain(`${f.b.id.slice(0, 8)} held it from`);
    expect(await timeline.locator('li').last().textContent()).toContain('now');

    // The new robot connects and sends: its data arrives on the name's plot live (SSE), beside A's.
    await f.publish(await f.connect(f.b), f.b, [50, 51, 52]);
    const chart = page.getByTestId('name-chart');
    await expect.poll(() => chart.getAttribute('data-series'), { timeout: 15_000 }).toBe(`device ${f.a.id.slice(0, 8)}|device ${f.b.id.slice(0, 8)}`);
    await expect.poll(() => chart.textContent()).toContain(`device ${f.b.id.slice(0, 8)}: 3 points`);
    await f.shot(page, 'name.png');

    // The old robot's page shows it revoked, its certificate too.
    await timeline.getByRole('link', { name: f.a.id.slice(0, 8) }).click();
    await page.getByRole('heading', { name: `Device ${f.a.id}` }).waitFor();
    await expect.poll(() => page.locator('.facts .badge').first().textContent()).toBe('revoked');
    await expect.poll(() => page.getByTestId('certificates').textContent()).toContain('revoked');
    expect(f.browser.problems).toEqual([]);
    await page.close();
  }, 90_000);

  test('fail: a viewer sees no replace button, and the API refuses the replace forced with the viewer\'s cookie', async () => {
    await f.browser.context.clearCookies();
    const page = await f.browser.context.newPage();
    await f.signIn(page, f.tokens['viewer']!);
    expect(await page.getByTestId('role').textContent()).toBe('viewer');
    await page.goto(`${f.t.url}/#/names/${NAME}`);
    await page.getByTestId('timeline').locator('li').first().waitFor();
    expect(await page.getByRole('button', { name: /Replace device|Bind/ }).count()).toBe(0);
    const before = await f.holder();
    const forced = await page.evaluate(
      async ([name, deviceId, expectedDeviceId]) => {
        const s = (await (await fetch('/v1/console/session')).json()) as { csrfToken: string };
        const r = await fetch(`/v1/names/${name}/replace`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-csrf-token': s.csrfToken },
          body: JSON.stringify({ deviceId, expectedDeviceId, revokeOld: true }),
        });
        return { status: r.status, body: (await r.json()) as { code: string } };
      },
      [NAME, f.a.id, before] as const,
    );
    expect(forced.status).toBe(403);
    expect(forced.body.code).toBe('FORBIDDEN');
    expect(await f.holder()).toBe(before);
    await page.close();
  }, 60_000);

  test('fail: a cross-site form post and a same-origin request without the CSRF token are refused with the operator\'s cookie', async () => {
    await f.browser.context.clearCookies();
    const page = await f.browser.context.newPage();
    await f.signIn(page, f.tokens['operator']!);
    const before = await f.holder();
    const fresh = (await f.t.call('POST', '/v1/devices', { body: { model: 'kuka-kr16' } })).body.id as string;

    // Another origin on the same host (same site: SameSite alone would not stop it) auto-posts a form.
    const evil: Server = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><form id="f" method="POST" action="${f.t.url}/v1/names/${NAME}/replace">
        <input name="deviceId" value="${fresh}"><input name="expectedDeviceId" value="${before}"><input name="revokeOld" value="true"></form>
        <script>document.getElementById('f').submit()</script>`);
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    try {
      const port = (evil.address() as { port: number }).port;
      const answer = page.waitForResponse((r) => r.url().includes(`/v1/names/${NAME}/replace`));
      await page.goto(`http://127.0.0.1:${port}/`, { waitUntil: 'commit' });
      const r = await answer;
      expect(r.status()).toBe(403);
      expect(await r.text()).toContain('CSRF_REFUSED');
    } finally {
      evil.closeAllConnections();
      await new Promise((r) => evil.close(r));
    }
    expect(await f.holder()).toBe(before);

    await page.goto(f.t.url);
    const noToken = await page.evaluate(async ([name, deviceId, expectedDeviceId]) => {
      const r = await fetch(`/v1/names/${name}/replace`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ deviceId, expectedDeviceId }) });
      return { status: r.status, code: ((await r.json()) as { code: string }).code };
    }, [NAME, fresh, before] as const);
    expect(noToken).toEqual({ status: 403, code: 'CSRF_REFUSED' });
    expect(await f.holder()).toBe(before);
    await page.close();
  }, 60_000);
  test('the devices page filters server-side by online (a real MQTT session) and by the bound name\'s tag', async () => {
    await f.browser.context.clearCookies();
    const page = await f.browser.context.newPage();
    await f.signIn(page, f.tokens['viewer']!);
    const c = await f.connect(f.b);
    try {
      await page.goto(`${f.t.url}/#/devices`);
      const table = page.getByTestId('devices-table');
      await page.getByLabel('Online').selectOption('true');
      await expect.poll(() => table.textContent(), { timeout: 10_000 }).toContain(f.b.id.slice(0, 8));
      await page.getByLabel('Online').selectOption('false');
      await expect.poll(() => table.textContent()).not.toContain(f.b.id.slice(0, 8));
      // A half-typed tag is not sent (a hint instead of a refusal); a whole one that no name carries empties the page.
      await page.getByLabel('Online').selectOption('');
      await page.getByLabel(/Tag of its name/).fill('zone');
      await page.getByText('A tag filter is key=value').waitFor();
      await page.getByLabel(/Tag of its name/).fill('zone=nowhere');
      await expect.poll(() => table.locator('tbody tr').count()).toBe(0);
      expect(f.browser.problems).toEqual([]);
    } finally {
      await c.endAsync();
      await page.close();
    }
  }, 60_000);
});
