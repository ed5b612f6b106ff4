/**
 * Issue 10: evidence bound to the physical identity, on two real TPMs (two swtpm instances whose
 * EK certificates come from one trusted manufacturer) against the real server, on SQLite and
 * PostgreSQL. The attacker holds a genuine TPM that the group enrollment trusts and names a
 * victim's device id in its bundle: everything but the EK is right.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceBundle } from '@fleetkey/protocol';
import { provision, writeBundle } from '../src/provisioning/index.js';
import { credentialFile } from '../src/provisioning/tpm-tools.js';
import { EK_CERT_NV_INDEX, ekCertificateFromNv } from '@fleetkey/crypto';
import { mtlsPost } from '../../server/test/support/mtls.js';
import { deviceKey } from '../../server/test/support/pki.js';
import { startSwtpm, swtpmMissing, type Swtpm } from '../../crypto/test/support/swtpm.js';
import { DIALECTS } from '../../server/test/support/databases.js';
import { manufactured, provisionX509 } from '../../server/test/support/provision.js';
import { startTestServer, type TestServer } from '../../server/test/support/test-server.js';
import { codeOf } from './support/refusal.js';

const missing = await swtpmMissing();
const ONCE = { retry: { maxAttempts: 1 } };

describe.skipIf(missing !== null)(`evidence binding on two swtpm TPMs${missing === null ? '' : ` (skipped: ${missing})`}`, () => {
  let tpmA: Swtpm;
  let tpmB: Swtpm;
  let root: string;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'fk-tpm-evidence-'));
    tpmA = await startSwtpm();
    tpmB = await startSwtpm({ sameManufacturerAs: tpmA });
  }, 60_000);

  afterAll(async () => {
    await tpmB?.stop();
    await tpmA?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  describe.each(DIALECTS)('on %s', (dialect) => {
    let t: TestServer;
    let hook: string;

    beforeAll(async () => {
      // The webhook receiving device.evidence_mismatch listens on loopback.
      t = await startTestServer(dialect, { config: { webhooks: { allowPrivateDestinations: ['127.0.0.1/32'] } } });
      const e = await t.call('POST', '/v1/enrollments', {
        body: { label: 'tpm robots', kind: 'group', attestation: 'tpm', trustAnchorsPem: tpmA.rootCaPem + tpmA.issuerCaPem, allocation: { type: 'template', template: 'tpm-{id8}' } },
      });
      expect(e.status).toBe(201);
      expect((await t.call('POST', '/v1/enrollments', { body: { label: 'x509 robots', kind: 'group', attestation: 'x509', allocation: { type: 'template', template: 'x-{id8}' } } })).status).toBe(201);
      const h = await t.call('POST', '/v1/webhooks', { body: { url: 'http://127.0.0.1:9/evidence', events: ['device.evidence_mismatch'] } });
      expect(h.status).toBe(201);
      hook = h.body.webhook.id;
    });
    afterAll(async () => t?.stop());

    /** A device bundle on `tpm` claiming `deviceId`; the operational key in an encrypted file. */
    async function bundleOn(tpm: Swtpm, deviceId: string): Promise<string> {
      const dir = join(mkdtempSync(join(root, 'b-')), 'bundle');
      const device: DeviceBundle = {
        version: 1,
        deviceId,
        model: 'kuka-kr16',
        serials: {},
        attestation: 'tpm',
        enrollmentId: null,
        provisioningUrl: t.server.deviceUrl,
        keystore: { type: 'file', dir: 'keys', protector: 'machine-secret' },
        idevidKeyLabel: null,
        tpmTcti: `swtpm:host=127.0.0.1,port=${tpm.port}`,
      };
      await writeBundle(dir, { device, caBundlePem: readFileSync(join(t.dataDir, 'ca-bundle.pem'), 'utf8'), machineSecret: randomBytes(32) });
      return dir;
    }
    const operational = async (deviceId: string) =>
      (await t.call('GET', `/v1/certificates?deviceId=${deviceId}`)).body.certificates.filter((c: { kind: string }) => c.kind === 'operational').map((c: { status: string }) => c.status);
    const lastRefusal = async (deviceId: string) =>
      (await t.call('GET', `/v1/audit?subject=device:${deviceId}&limit=1000`)).body.entries.filter((e: { outcome: string }) => e.outcome === 'refused').at(-1);
    const mismatches = async (deviceId: string) =>
      (await t.server.store.db.selectFrom('events').select('payload').where('type', '=', 'device.evidence_mismatch').where('subject', '=', `device:${deviceId}`).execute()).map(
        (e) => JSON.parse(e.payload) as Record<string, any>,
      );
    const delivered = async () => (await t.call('GET', `/v1/webhooks/${hook}/deliveries?limit=100`)).body.deliveries.filter((d: { eventType: string }) => d.eventType === 'device.evidence_mismatch').length;

    let victim = '';

    it('TPM A provisions a device under the group enrollment; the EK is recorded as its evidence', async () => {
      victim = randomUUID();
      const r = await provision(await bundleOn(tpmA, victim), ONCE);
      expect(r).toMatchObject({ deviceId: victim, name: `tpm-${victim.slice(0, 8)}` });
      const ev = (await t.call('GET', `/v1/devices/${victim}/evidence`)).body;
      expect(ev.current).toMatchObject({ method: 'tpm', identity: { ekSha256: expect.stringMatching(/^[0-9a-f]{64}$/) } });
      expect(ev.current.seen.akName).toMatch(/^000b[0-9a-f]{64}$/);
    }, 60_000);

    it('fail: TPM B from the same trusted manufacturer cannot provision the device admitted with TPM A', async () => {
      const before = await delivered();
      expect((await codeOf(provision(await bundleOn(tpmB, victim), ONCE))).code).toBe('PROVISIONING_REFUSED');
      const refusal = await lastRefusal(victim);
      expect(refusal.detail).toMatchObject({ attempt: 'takeover' });
      expect(refusal.detail.reason).toMatch(/EK .* differs from the one recorded/);
      const events = await mismatches(victim);
      expect(events.at(-1)).toMatchObject({ deviceId: victim, presented: { method: 'tpm' }, recorded: { method: 'tpm' } });
      expect(events.at(-1)!.presented.identity.ekSha256).not.toBe(events.at(-1)!.recorded.identity.ekSha256);
      expect(await delivered()).toBe(before + 1);
      expect(await operational(victim)).toEqual(['valid']);
      expect((await t.call('GET', `/v1/devices/${victim}`)).body.name).toBe(`tpm-${victim.slice(0, 8)}`);
    }, 60_000);

    it('fail: TPM B cannot provision a device admitted by X.509', async () => {
      const robot = await manufactured(t, 'kuka-kr16');
      expect((await provisionX509(t, robot)).status).toBe(200);
      const name = (await t.call('GET', `/v1/devices/${robot.id}`)).body.name;
      expect(name).toBe(`x-${robot.id.slice(0, 8)}`);
      expect((await codeOf(provision(await bundleOn(tpmB, robot.id), ONCE))).code).toBe('PROVISIONING_REFUSED');
      expect((await lastRefusal(robot.id)).detail).toMatchObject({ attempt: 'takeover' });
      expect(await mismatches(robot.id)).toEqual([expect.objectContaining({ presented: expect.objectContaining({ method: 'tpm' }), recorded: expect.objectContaining({ method: 'x509' }) })]);
      expect(await operational(robot.id)).toEqual(['valid']);
      expect((await t.call('GET', `/v1/devices/${robot.id}`)).body.name).toBe(name);
    }, 60_000);

    it('fail: TPM A, bound to its device, cannot claim a second device id (one EK, one device)', async () => {
      const fresh = randomUUID();
      expect((await codeOf(provision(await bundleOn(tpmA, fresh), ONCE))).code).toBe('PROVISIONING_REFUSED');
      expect((await lastRefusal(fresh)).detail).toMatchObject({ attempt: 'takeover', boundTo: victim });
      expect((await t.call('GET', `/v1/devices/${fresh}`)).body.code).toBe('DEVICE_NOT_FOUND');
      expect(await mismatches(fresh)).toHaveLength(1);
    }, 60_000);

    /**
     * The attacker's own flow on `tpm`: start with `ekPublic` as given (the TPM's real EK key,
     * re-encoded), activate the credential in the TPM, finish. Resolves with the finish answer.
     */
    async function claimWithEncoding(tpm: Swtpm, deviceId: string, reencode: (ekPub: Buffer) => Buffer): Promise<{ status: number; body: any }> {
      await tpm.tpm2('tpm2_createek', ['-c', 'ek.ctx', '-G', 'rsa', '-u', 'ek.pub']);
      await tpm.tpm2('tpm2_nvread', [`0x${EK_CERT_NV_INDEX.rsa2048.toString(16)}`, '-C', 'o', '-o', 'ek-cert.der']);
      await tpm.tpm2('tpm2_createak', ['-C', 'ek.ctx', '-c', 'ak.ctx', '-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa', '-u', 'ak.pub', '-n', 'ak.name', '-f', 'tss']);
      const real = readFileSync(tpm.path('ek.pub'));
      const ekPublic = reencode(real);
      expect(ekPublic.equals(real)).toBe(false);
      const ca = readFileSync(join(t.dataDir, 'ca-bundle.pem'), 'utf8');
      const start = await mtlsPost(`${t.server.deviceUrl}/device/v1/provision/tpm/start`, {
        deviceId,
        ekPublic: ekPublic.toString('base64'),
        ekCertificate: ekCertificateFromNv(readFileSync(tpm.path('ek-cert.der'))).toString('base64'),
        akPublic: readFileSync(tpm.path('ak.pub')).toString('base64'),
      }, { ca });
      if (start.status !== 200) return start;
      const b = (s: string) => Buffer.from(s, 'base64');
      writeFileSync(tpm.path('cred.bin'), credentialFile(b(start.body.credentialBlob), b(start.body.encryptedSecret)));
      await tpm.tpm2('tpm2_startauthsession', ['--policy-session', '-S', 'session.ctx']);
      try {
        await tpm.tpm2('tpm2_policysecret', ['-S', 'session.ctx', '-c', 'e']);
        await tpm.tpm2('tpm2_activatecredential', ['-c', 'ak.ctx', '-C', 'ek.ctx', '-i', 'cred.bin', '-o', 'secret.bin', '-P', 'session:session.ctx']);
      } finally {
        await tpm.tpm2('tpm2_flushcontext', ['session.ctx']).catch(() => undefined);
      }
      const csr = deviceKey().csrPem;
      return mtlsPost(`${t.server.deviceUrl}/device/v1/provision/tpm/finish`, { challengeId: start.body.challengeId, secret: readFileSync(tpm.path('secret.bin')).toString('base64'), csr }, { ca });
    }

    // TPM 2.0 Part 2 §12.2.3.5: an RSA exponent of 0 means 65537, so both spellings are one key;
    // authPolicy is not part of the key either. MakeCredential needs only the key, nameAlg and
    // symmetric definition, so the real TPM activates a credential made for either spelling.
    const rsaExponentOffset = (ekPub: Buffer) => 2 + 2 + 2 + 4 + 2 + ekPub.readUInt16BE(10) + 6 + 2 + 2;
    const exponentSpelledOut = (ekPub: Buffer) => {
      const out = Buffer.from(ekPub);
      expect(out.readUInt32BE(rsaExponentOffset(out))).toBe(0);
      out.writeUInt32BE(0x10001, rsaExponentOffset(out));
      return out;
    };
    const withoutAuthPolicy = (ekPub: Buffer) => {
      const size = ekPub.readUInt16BE(10);
      const body = Buffer.concat([ekPub.subarray(2, 10), Buffer.from([0, 0]), ekPub.subarray(12 + size)]);
      const out = Buffer.alloc(2);
      out.writeUInt16BE(body.length);
      return Buffer.concat([out, body]);
    };

    it.each([
      ['its RSA exponent 0 written out as 65537', exponentSpelledOut],
      ['its authPolicy left out', withoutAuthPolicy],
    ])('fail: TPM A, bound to its device, cannot claim a second device id by re-encoding its EK public area (%s)', async (_how, reencode) => {
      const fresh = randomUUID();
      const r = await claimWithEncoding(tpmA, fresh, reencode);
      expect(r.body.code, `status ${r.status}, device ${r.body.deviceId ?? '-'}`).toBe('PROVISIONING_REFUSED');
      expect((await lastRefusal(fresh)).detail).toMatchObject({ attempt: 'takeover', boundTo: victim });
      expect((await t.call('GET', `/v1/devices/${fresh}`)).body.code).toBe('DEVICE_NOT_FOUND');
      expect(await mismatches(fresh)).toHaveLength(1);
    }, 60_000);

    it('a repaired robot: after an admin resets its evidence, TPM B provisions it and becomes its evidence; TPM A no longer can', async () => {
      const reset = await t.call('POST', `/v1/devices/${victim}/evidence/reset`, { body: { reason: 'mainboard replaced (new TPM)' } });
      expect(reset.status, JSON.stringify(reset.body)).toBe(200);
      const r = await provision(await bundleOn(tpmB, victim), ONCE);
      expect(r).toMatchObject({ deviceId: victim, name: `tpm-${victim.slice(0, 8)}` });
      expect(await operational(victim)).toEqual(expect.arrayContaining(['superseded', 'valid']));
      expect((await codeOf(provision(await bundleOn(tpmA, victim), ONCE))).code).toBe('PROVISIONING_REFUSED');
      expect((await lastRefusal(victim)).detail).toMatchObject({ attempt: 'takeover' });
    }, 60_000);

    // Issue 10 defect 1 on an upgraded server: a device TPM-provisioned before evidence was recorded
    // (migration 008) was proved by one EK, which the audit log names; any other TPM is a takeover.
    it('fail: TPM B cannot take a device that TPM A provisioned before evidence was recorded; TPM A re-admits it and its EK is recorded', async () => {
      expect((await t.call('POST', `/v1/devices/${victim}/evidence/reset`, { body: { reason: 'frees TPM B for this test' } })).status).toBe(200);
      const legacy = randomUUID();
      expect(await provision(await bundleOn(tpmA, legacy), ONCE)).toMatchObject({ deviceId: legacy });
      await t.server.store.db.deleteFrom('device_evidence').where('device_id', '=', legacy).execute(); // as provisioned before 008
      expect((await codeOf(provision(await bundleOn(tpmB, legacy), ONCE))).code).toBe('PROVISIONING_REFUSED');
      expect((await lastRefusal(legacy)).detail).toMatchObject({ attempt: 'takeover' });
      expect(await operational(legacy)).toEqual(['valid']);
      expect(await provision(await bundleOn(tpmA, legacy), ONCE)).toMatchObject({ deviceId: legacy });
      const ev = (await t.call('GET', `/v1/devices/${legacy}/evidence`)).body.current;
      expect(ev).toMatchObject({ method: 'tpm' });
      expect((await codeOf(provision(await bundleOn(tpmB, legacy), ONCE))).code).toBe('PROVISIONING_REFUSED');
    }, 90_000);
  });
});
