import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { fleetkey, fleetkeyJson, serve } from './run-cli.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('the operator story through the fleetkey binary', () => {
  let cwd: string;
  let server: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'fleetkey-cli-'));
    server = await serve(cwd);
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(cwd, { recursive: true, force: true });
  });

  test('first start creates the data dir with 0600 secrets and prints the admin token once', () => {
    const token = /\n(fkt_[A-Za-z0-9_-]{43})\n/.exec(server.stdout())?.[1];
    expect(token).toBeDefined();
    for (const f of ['master.key', 'admin.token', 'fleetkey.db']) {
      expect(statSync(join(cwd, 'fleetkey-data', f)).mode & 0o777, f).toBe(0o600);
    }
    expect(statSync(join(cwd, 'fleetkey-data')).mode & 0o777).toBe(0o700);
  });

  test('register, name, bind, replace with --revoke-old, history, rename', async () => {
    const a = await fleetkeyJson(cwd, ['device', 'create', '--model', 'kuka-kr16', '--serial', 'controller=C-100', '--serial', 'arm=A-7']);
    expect(a.id).toMatch(UUID);
    expect(a.serials).toEqual({ controller: 'C-100', arm: 'A-7' });
    const b = await fleetkeyJson(cwd, ['device', 'create', '--model', 'kuka-kr16']);
    const n = await fleetkeyJson(cwd, ['name', 'create', 'line-03-left-welding-12', '--tag', 'site=plant-1', '--tag', 'line=03']);
    expect(n.tags).toEqual({ site: 'plant-1', line: '03' });
    await fleetkeyJson(cwd, ['name', 'bind', 'line-03-left-welding-12', a.id]);

    const r = await fleetkeyJson(cwd, ['name', 'replace', 'line-03-left-welding-12', '--with', b.id, '--revoke-old', '--reason', 'servo failure']);
    expect(r).toMatchObject({ previousDeviceId: a.id, oldDeviceRevoked: true, name: { deviceId: b.id } });
    expect((await fleetkeyJson(cwd, ['device', 'show', a.id])).status).toBe('revoked');

    const h = await fleetkeyJson(cwd, ['name', 'history', 'line-03-left-welding-12']);
    expect(h.bindings.map((x: { deviceId: string }) => x.deviceId)).toEqual([a.id, b.id]);
    expect(h.bindings[0]).toMatchObject({ unbindReason: 'servo failure', unbindActor: expect.stringMatching(/^token:/) });
    const human = await fleetkey(cwd, ['name', 'history', 'line-03-left-welding-12']);
    expect(human.stdout).toContain('servo failure');
    expect(human.stdout).toContain('(current)');

    await fleetkeyJson(cwd, ['name', 'rename', 'line-03-left-welding-12', 'line-03-left-welding-12a']);
    const moved = await fleetkey(cwd, ['name', 'show', 'line-03-left-welding-12']);
    expect(moved.code).toBe(1);
    expect(moved.stderr).toContain('NAME_MOVED');
    expect(moved.stderr).toContain('renamed to line-03-left-welding-12a');
    const shown = await fleetkeyJson(cwd, ['name', 'show', 'line-03-left-welding-12a']);
    expect(shown).toMatchObject({ deviceId: b.id, aliases: ['line-03-left-welding-12'] });

    // A revoked device cannot be bound again, and the refusal is a clear code with exit 1.
    const again = await fleetkey(cwd, ['name', 'create', 'spare-cell']);
    expect(again.code).toBe(0);
    const refused = await fleetkey(cwd, ['name', 'bind', 'spare-cell', a.id]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('DEVICE_NOT_BINDABLE');
    // A replace names the device it replaces; an unbound name has none to name.
    const unbound = await fleetkey(cwd, ['name', 'replace', 'spare-cell', '--with', b.id]);
    expect(unbound.code).toBe(1);
    expect(unbound.stderr).toContain('NAME_NOT_BOUND');
  });

  test('device lifecycle, listing and refusals', async () => {
    const d = await fleetkeyJson(cwd, ['device', 'create']);
    expect((await fleetkeyJson(cwd, ['device', 'suspend', d.id, '--reason', 'audit'])).status).toBe('suspended');
    expect((await fleetkeyJson(cwd, ['device', 'resume', d.id])).status).toBe('manufactured');
    expect((await fleetkeyJson(cwd, ['device', 'retire', d.id])).status).toBe('retired');
    const list = await fleetkeyJson(cwd, ['device', 'list', '--status', 'retired']);
    expect(list.devices.map((x: { id: string }) => x.id)).toContain(d.id);
    const dup = await fleetkey(cwd, ['device', 'create', '--id', d.id]);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain('DEVICE_EXISTS');
    const bad = await fleetkey(cwd, ['device', 'create', '--id', 'nope']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('VALIDATION_FAILED');
    const usage = await fleetkey(cwd, ['name', 'replace', 'x']);
    expect(usage.code).toBe(2);
  });

  test('tokens: created once, used through FLEETKEY_TOKEN, revoked', async () => {
    const t = await fleetkeyJson(cwd, ['token', 'create', '--role', 'viewer', '--name', 'dashboards']);
    expect(t.secret).toMatch(/^fkt_/);
    const env = { FLEETKEY_TOKEN: t.secret, FLEETKEY_URL: server.url };
    const other = mkdtempSync(join(tmpdir(), 'fleetkey-cli-elsewhere-'));
    try {
      expect((await fleetkey(other, ['device', 'list'], env)).code).toBe(0);
      const denied = await fleetkey(other, ['device', 'create'], env);
      expect(denied.code).toBe(1);
      expect(denied.stderr).toContain('FORBIDDEN');
      const listed = await fleetkeyJson(cwd, ['token', 'list']);
      expect(JSON.stringify(listed)).not.toContain(t.secret);
      await fleetkeyJson(cwd, ['token', 'revoke', t.token.id]);
      const revoked = await fleetkey(other, ['device', 'list'], env);
      expect(revoked.code).toBe(1);
      expect(revoked.stderr).toContain('UNAUTHENTICATED');
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  test('webhooks add, list, remove', async () => {
    // A public address literal: a name would be resolved when the webhook is added (internal
    // destinations are refused), and tests send nothing outside 127.0.0.0/8, DNS included. No
    // event fires while it exists, so nothing is delivered to it.
    const w = await fleetkeyJson(cwd, ['webhook', 'add', 'https://93.184.215.14/fleet', '--events', 'name.rebound,device.status_changed']);
    expect(w.secret).toMatch(/^whsec_/);
    const list = await fleetkeyJson(cwd, ['webhook', 'list']);
    expect(list.webhooks.map((x: { id: string }) => x.id)).toContain(w.webhook.id);
    await fleetkeyJson(cwd, ['webhook', 'remove', w.webhook.id]);
    expect((await fleetkeyJson(cwd, ['webhook', 'list'])).webhooks).toHaveLength(0);
    const bad = await fleetkey(cwd, ['webhook', 'add', 'https://x.test', '--events', 'no.such.event']);
    expect(bad.code).toBe(1);
  });

  test('audit list by subject, verify, and a tampered row is named', async () => {
    const entries = await fleetkeyJson(cwd, ['audit', 'list', '--subject', 'name:line-03-left-welding-12', '--limit', '50']);
    expect(entries.entries.map((e: { action: string }) => e.action)).toEqual(['name.create', 'name.bind', 'name.replace', 'name.rename']);
    const ok = await fleetkey(cwd, ['audit', 'verify']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/intact: \d+ entries/);

    const victim = entries.entries[2].seq as number;
    await server.stop();
    const db = new Database(join(cwd, 'fleetkey-data', 'fleetkey.db'));
    db.exec('drop trigger audit_no_update');
    db.prepare("update audit_log set detail = replace(detail, 'servo failure', 'routine') where seq = ?").run(victim);
    db.close();
    server = await serve(cwd);
    expect(server.stdout()).not.toMatch(/fkt_/); // the admin token is printed on the first start only
    const broken = await fleetkey(cwd, ['audit', 'verify']);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(`BROKEN at entry ${victim}`);
    const json = await fleetkey(cwd, ['audit', 'verify', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, firstBrokenSeq: victim });
  });

  test('commands to a name are kept until its device takes them; data is queried by name or device', async () => {
    await fleetkeyJson(cwd, ['name', 'create', 'press-9']);
    const sent = await fleetkeyJson(cwd, ['command', 'send', 'press-9', '--type', 'set-speed', '--payload', '{"rpm":900}', '--ttl', '10m']);
    const shown = await fleetkeyJson(cwd, ['command', 'show', sent.id]);
    expect(shown).toMatchObject({ name: 'press-9', type: 'set-speed', payload: { rpm: 900 }, status: 'pending', deliveredTo: null });
    expect((await fleetkeyJson(cwd, ['data', 'diagnostics', 'press-9'])).points).toEqual([]);
    const unknown = await fleetkey(cwd, ['command', 'send', 'no-such-name', '--type', 'x']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('NAME_NOT_FOUND');
    const badJson = await fleetkey(cwd, ['command', 'send', 'press-9', '--type', 'x', '--payload', '{nope']);
    expect(badJson.code).toBe(3);
  });

  test('an unreachable server is a clear failure, not a stack trace', async () => {
    const r = await fleetkey(cwd, ['device', 'list', '--url', 'http://127.0.0.1:9']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('cannot reach the Fleetkey server');
  });
});
