import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { chromiumAvailable, seriousA11yViolations } from '../support/browser.js';
import { NAME, StoryFixture } from '../support/story-fixture.js';

describe.skipIf(!chromiumAvailable())('web console in Debian chromium: accessibility (axe-core), CSP, caching', () => {
  const f = new StoryFixture();
  beforeAll(() => f.start(), 120_000);
  afterAll(() => f.stop());

  test('axe-core finds no serious or critical violation on any page; no CSP violation; hashed assets cached, index not', async () => {
    await f.browser.context.clearCookies();
    const page = await f.browser.context.newPage();
    const found: Record<string, unknown> = {};
    await page.goto(f.t.url);
    await page.getByLabel('API token').waitFor();
    found['sign-in'] = await seriousA11yViolations(page);
    await f.shot(page, 'sign-in.png');
    await f.signIn(page, f.tokens['operator']!);
    // Admin-only pages are checked with the admin's session.
    await f.browser.context.clearCookies();
    await f.signIn(page, f.t.adminToken);
    // Robot A is connected over MQTT: the overview counts it online.
    await expect.poll(() => page.getByTestId('online').textContent()).toBe('1 online now');
    const pages: [string, string, string | null][] = [
      ['overview', '#/', 'overview.png'],
      ['devices', '#/devices', 'devices.png'],
      ['device', `#/devices/${f.b.id}`, 'device.png'],
      ['names', '#/names', null],
      ['name', `#/names/${NAME}`, null],
      ['enrollments', '#/enrollments', null],
      ['ca', '#/ca', 'ca.png'],
      ['webhooks', '#/webhooks', null],
      ['audit', '#/audit', null],
      ['rollouts', '#/rollouts', null],
    ];
    for (const [label, hash, file] of pages) {
      await page.goto(`${f.t.url}/${hash}`);
      await page.getByRole('heading', { level: 1 }).waitFor();
      // The event streams keep the network busy for ever: give the page's first fetches a moment.
      await page.waitForTimeout(600);
      found[label] = await seriousA11yViolations(page);
      if (file !== null) await f.shot(page, file);
    }
    await page.goto(`${f.t.url}/#/audit`);
    await page.getByRole('button', { name: 'Verify chain' }).click();
    await expect.poll(() => page.getByTestId('verify-result').textContent()).toMatch(/^Chain verified: \d+ entries\.$/);
    found['audit (verified)'] = await seriousA11yViolations(page);
    await f.shot(page, 'audit.png');
    expect(found).toEqual(Object.fromEntries(Object.keys(found).map((k) => [k, []])));
    expect(f.browser.problems).toEqual([]);

    const index = await fetch(`${f.t.url}/`);
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(await index.text())?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${f.t.url}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(asset.headers.get('content-type')).toContain('text/javascript');
    await page.close();
  }, 90_000);
});
