/**
 * Issue 12: the anti-rollback floor in a TPM NV counter (swtpm, driven with tpm2-tools), with the
 * real server and the real SDK updater. A downgrade below the floor is refused; a floor file put
 * back from before the last install (what a disk image restore or an attacker with the disk can
 * do, and what a file alone cannot detect) no longer matches the counter and fails closed.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DeviceUpdater, FLOOR_FILE, TpmFloorStore } from '../../src/updates/index.js';
import { startSwtpm, swtpmMissing, type Swtpm } from '../../../crypto/test/support/swtpm.js';
import { startUpdateEnv, serverView, until, type DeviceRun, type TestDevice, type UpdateEnv } from './support/update-env.js';

const missing = await swtpmMissing();

describe.skipIf(missing !== null)(`anti-rollback floor in a TPM NV counter${missing === null ? '' : ` (skipped: ${missing})`}`, () => {
  let env: UpdateEnv;
  let tpm: Swtpm;
  let a: TestDevice;
  let run: DeviceRun;
  let floor: TpmFloorStore;
  const protector = randomBytes(32);

  beforeAll(async () => {
    tpm = await startSwtpm();
    env = await startUpdateEnv('sqlite');
    a = await env.device();
    const stateDir = join(env.scratch, 'tpm-device');
    floor = await TpmFloorStore.open({
      tcti: `swtpm:host=127.0.0.1,port=${tpm.port}`,
      dir: stateDir,
      protector: { kind: 'machine', secret: protector },
      trustedMetadataExists: () => DeviceUpdater.hasTrustedMetadata(stateDir),
    });
    run = await env.updater(a, { stateDir, floor, protector });
  }, 60_000);
  afterAll(async () => {
    await run?.close();
    await env?.stop();
    await tpm?.stop();
  });

  test('the floor follows installs on the NV counter; a signed downgrade below it is refused; an older floor file put back fails closed', async () => {
    expect(await floor.counter()).toBe('undefined');
    const v1 = await env.release({ model: 'robot-x', version: '1.0.0', content: randomBytes(40_000) });
    await env.assign(a.name, v1.id);
    expect((await run.updater.check()).status).toBe('installed');
    const afterV1 = await floor.counter();
    expect(afterV1).toMatch(/^\d+$/);
    const oldFile = join(env.scratch, 'floor-after-v1');
    copyFileSync(join(run.stateDir, FLOOR_FILE), oldFile);

    const v2 = await env.release({ model: 'robot-x', version: '2.0.0', content: randomBytes(40_000), minVersion: '2.0.0' });
    await env.assign(a.name, v2.id);
    expect((await run.updater.check()).status).toBe('installed');
    expect(BigInt(await floor.counter())).toBe(BigInt(afterV1) + 1n);
    expect((await floor.read()).state).toMatchObject({ floor: '2.0.0', installedVersion: '2.0.0' });

    // Downgrade: 1.0.0 is signed by the repository and assigned by the director, yet below the floor.
    await env.assign(a.name, v1.id);
    expect(await run.updater.check()).toMatchObject({ status: 'failed', code: 'UPDATE_BELOW_FLOOR' });
    expect(run.installed).toHaveLength(2);
    await until(async () => ((await serverView(env, a.id)).reports.some((r) => r.code === 'UPDATE_BELOW_FLOOR') ? true : undefined));

    // Rollback of the floor itself: the v1-era file authenticates under the device key, but its
    // counter value is one behind the TPM's.
    const current = join(env.scratch, 'floor-current');
    copyFileSync(join(run.stateDir, FLOOR_FILE), current);
    copyFileSync(oldFile, join(run.stateDir, FLOOR_FILE));
    expect(await run.updater.check()).toMatchObject({ status: 'failed', code: 'UPDATE_FLOOR_INVALID' });
    // Deleted: the counter says a floor was written.
    rmSync(join(run.stateDir, FLOOR_FILE));
    expect(await run.updater.check()).toMatchObject({ status: 'failed', code: 'UPDATE_FLOOR_INVALID' });
    expect(run.installed).toHaveLength(2);
    // The genuine file restores service.
    copyFileSync(current, join(run.stateDir, FLOOR_FILE));
    expect(await run.updater.check()).toMatchObject({ status: 'failed', code: 'UPDATE_BELOW_FLOOR' });
  });

  test('an interrupted floor write (counter incremented, rename not done) is completed on the next read', async () => {
    const before = (await floor.read()).state;
    // Simulate the crash window: seal the next state, increment, but leave floor.next in place.
    const { writeSealed } = await import('../../src/updates/floor.js');
    const next = BigInt(await floor.counter()) + 1n;
    await writeSealed(join(run.stateDir, 'floor.next'), { kind: 'machine', secret: protector }, { ...before, counter: before.counter + 1 }, next.toString());
    const { execFileSync } = await import('node:child_process');
    execFileSync('tpm2_nvincrement', ['-C', 'o', '0x01500016'], { env: { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${tpm.port}` }, stdio: 'ignore' });
    expect((await floor.read()).state.counter).toBe(before.counter + 1);
  });
});
