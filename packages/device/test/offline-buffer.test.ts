import { randomBytes } from 'node:crypto';
import { appendFile, chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATA_KEY_FILE, LOG_FILE, OfflineBuffer, type BufferedMessage } from '../src/offline/index.js';

const code = (c: string) => expect.objectContaining({ code: c });
const HEADER = 8 + 1 + 16 + 8 + 8 + 28; // format.ts: magic, version, salt, firstSeq, dropped, header tag

let root: string;
let n = 0;
const newDir = (): string => join(root, `buf${++n}`);
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fk-offline-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Byte ranges of each record frame in a log file. */
function frames(file: Buffer): Array<{ start: number; end: number }> {
  const out: Array<{ start: number; end: number }> = [];
  for (let o = HEADER; o + 12 <= file.length; ) {
    const end = o + 12 + file.readUInt32BE(o);
    if (end > file.length) break;
    out.push({ start: o, end });
    o = end;
  }
  return out;
}

async function filled(count: number, opts: { key?: Buffer; maxBytes?: number } = {}): Promise<{ dir: string; key: Buffer; path: string }> {
  const dir = newDir();
  const key = opts.key ?? randomBytes(32);
  const buf = await OfflineBuffer.open({ dir, key, ...(opts.maxBytes === undefined ? {} : { maxBytes: opts.maxBytes }) });
  for (let i = 1; i <= count; i++) await buf.append('telemetry', Buffer.from(`reading ${i}`));
  await buf.close();
  return { dir, key, path: join(dir, LOG_FILE) };
}

async function drainAll(buf: OfflineBuffer): Promise<BufferedMessage[]> {
  const got: BufferedMessage[] = [];
  await buf.drain((m) => {
    got.push(m);
    return true;
  });
  return got;
}

/** Rewrites the log with `edit` applied and expects opening it to fail without touching it. */
async function expectRefused(path: string, dir: string, key: Buffer, edit: (file: Buffer) => Buffer): Promise<void> {
  const edited = edit(await readFile(path));
  await writeFile(path, edited, { mode: 0o600 });
  await expect(OfflineBuffer.open({ dir, key })).rejects.toThrow(code('DECRYPT_FAILED'));
  expect((await readFile(path)).equals(edited)).toBe(true); // refused, not "repaired"
}

describe('OfflineBuffer refusals', () => {
  it('fail: a wrong key does not open the buffer', async () => {
    const { dir } = await filled(2);
    await expect(OfflineBuffer.open({ dir, key: randomBytes(32) })).rejects.toThrow(code('DECRYPT_FAILED'));
  });

  it('fail: a wrong protector secret cannot unseal the data key', async () => {
    const dir = newDir();
    const buf = await OfflineBuffer.open({ dir, protector: { kind: 'machine', secret: randomBytes(32) } });
    await buf.append('diagnostics', Buffer.from('x'));
    await buf.close();
    await expect(OfflineBuffer.open({ dir, protector: { kind: 'machine', secret: randomBytes(32) } })).rejects.toThrow(code('KEY_FILE_CORRUPT'));
  });

  it('fail: one flipped bit in a record is detected', async () => {
    const { dir, key, path } = await filled(4);
    await expectRefused(path, dir, key, (f) => {
      const r = frames(f)[1]!;
      f[r.start + 30] = (f[r.start + 30] ?? 0) ^ 0x01;
      return f;
    });
  });

  it('fail: reordered records are detected, even with their sequence numbers edited to look in order', async () => {
    const { dir, key, path } = await filled(4);
    const original = await readFile(path);
    const [a, b, c, d] = frames(original).map((r) => original.subarray(r.start, r.end));
    const header = original.subarray(0, HEADER);
    await expectRefused(path, dir, key, () => Buffer.concat([header, a!, c!, b!, d!]));
    await expectRefused(path, dir, key, () => {
      const swappedB = Buffer.from(c!);
      const swappedC = Buffer.from(b!);
      swappedB.writeBigUInt64BE(2n, 4); // c now claims seq 2
      swappedC.writeBigUInt64BE(3n, 4); // b now claims seq 3
      return Buffer.concat([header, a!, swappedB, swappedC, d!]);
    });
  });

  it('fail: a replayed (duplicated) record and a deleted middle record are detected', async () => {
    const { dir, key, path } = await filled(3);
    const original = await readFile(path);
    const [a, b, c] = frames(original).map((r) => original.subarray(r.start, r.end));
    const header = original.subarray(0, HEADER);
    await expectRefused(path, dir, key, () => Buffer.concat([header, a!, b!, b!, c!]));
    await expectRefused(path, dir, key, () => Buffer.concat([header, a!, c!]));
  });

  it('fail: dropping the first record and moving firstSeq in the header breaks the header tag', async () => {
    const { dir, key, path } = await filled(3);
    const original = await readFile(path);
    const [, b, c] = frames(original).map((r) => original.subarray(r.start, r.end));
    await expectRefused(path, dir, key, () => {
      const header = Buffer.from(original.subarray(0, HEADER));
      header.writeBigUInt64BE(2n, 25);
      return Buffer.concat([header, b!, c!]);
    });
  });

  it('fail: a record of an earlier generation of the same buffer cannot be spliced back in', async () => {
    const { dir, key, path } = await filled(3);
    const old = await readFile(path);
    const buf = await OfflineBuffer.open({ dir, key });
    await buf.drain((m) => m.seq === 1); // delivers seq 1, rewrites seqs 2..3 under a new key
    await buf.close();
    const now = await readFile(path);
    await expectRefused(path, dir, key, () => Buffer.concat([now, old.subarray(frames(old)[2]!.start)])); // old seq 3 again as "seq 4"
  });

  it('fail: a log file or directory other users can reach is refused', async () => {
    const { dir, key, path } = await filled(1);
    await chmod(path, 0o644);
    await expect(OfflineBuffer.open({ dir, key })).rejects.toThrow(code('KEY_FILE_PERMISSIONS'));
    await chmod(path, 0o600);
    await chmod(dir, 0o755);
    await expect(OfflineBuffer.open({ dir, key })).rejects.toThrow(code('KEY_FILE_PERMISSIONS'));
  });

  it('fail: unknown kinds, bad command ids and oversized payloads are refused and nothing is written', async () => {
    const dir = newDir();
    const buf = await OfflineBuffer.open({ dir, key: randomBytes(32), maxBytes: 8192 });
    await expect(buf.append('firmware' as never, Buffer.from('x'))).rejects.toThrow(code('GATEWAY_TOPIC_INVALID'));
    await expect(buf.append('command_result', Buffer.from('x'))).rejects.toThrow(code('GATEWAY_TOPIC_INVALID'));
    await expect(buf.append('command_result', Buffer.from('x'), { commandId: 'a/#' })).rejects.toThrow(code('GATEWAY_TOPIC_INVALID'));
    await expect(buf.append('telemetry', Buffer.from('x'), { commandId: 'c1' })).rejects.toThrow(code('GATEWAY_TOPIC_INVALID'));
    await expect(buf.append('telemetry', Buffer.alloc(buf.maxPayloadBytes + 1))).rejects.toThrow(RangeError);
    expect(buf.stats()).toMatchObject({ records: 0, bytes: HEADER, nextSeq: 1 });
    await buf.close();
    await expect(buf.append('telemetry', Buffer.from('x'))).rejects.toThrow(code('INTERNAL'));
    await expect(OfflineBuffer.open({ dir, key: randomBytes(16) })).rejects.toThrow(RangeError);
    await expect(OfflineBuffer.open({ dir })).rejects.toThrow(TypeError);
  });

  it("onCorrupt: 'quarantine' sets a tampered file aside (kept, not deleted) and starts empty", async () => {
    const { dir, key, path } = await filled(2);
    const f = await readFile(path);
    f[f.length - 1] = (f[f.length - 1] ?? 0) ^ 0x80;
    await writeFile(path, f, { mode: 0o600 });
    const buf = await OfflineBuffer.open({ dir, key, onCorrupt: 'quarantine' });
    const stats = buf.stats();
    expect(stats.records).toBe(0);
    expect(stats.quarantinedFile).toMatch(/^offline\.log\.corrupt-/);
    expect((await readFile(join(dir, stats.quarantinedFile!))).equals(f)).toBe(true);
    expect((await buf.append('state', Buffer.from('fresh'))).seq).toBe(1);
    await buf.close();
  });
});

describe('OfflineBuffer behaviour', () => {
  it('drain replays in order and removes only what the handler acknowledged; the rest survives a restart', async () => {
    const dir = newDir();
    const key = randomBytes(32);
    let buf = await OfflineBuffer.open({ dir, key });
    for (let i = 1; i <= 5; i++) await buf.append('diagnostics', Buffer.from(`parts/h ${i}`));
    await buf.append('command_result', Buffer.from('{"ok":true}'), { commandId: 'cmd-42' });
    const seen: number[] = [];
    const r = await buf.drain((m) => {
      seen.push(m.seq);
      return m.seq < 3; // acknowledges 1 and 2, refuses 3
    });
    expect(seen).toEqual([1, 2, 3]);
    expect(r).toEqual({ delivered: 2, remaining: 4 });
    await buf.close();

    buf = await OfflineBuffer.open({ dir, key }); // process restart
    expect(buf.stats()).toMatchObject({ records: 4, nextSeq: 7 });
    const rest = await drainAll(buf);
    expect(rest.map((m) => [m.seq, m.kind, m.payload.toString()])).toEqual([
      [3, 'diagnostics', 'parts/h 3'],
      [4, 'diagnostics', 'parts/h 4'],
      [5, 'diagnostics', 'parts/h 5'],
      [6, 'command_result', '{"ok":true}'],
    ]);
    expect(rest[3]!.commandId).toBe('cmd-42');
    expect(rest[0]!.appendedAt.getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect((await buf.append('telemetry', Buffer.from('after'))).seq).toBe(7); // sequence never restarts
    await buf.close();
  });

  it('a handler that throws: acknowledged records are removed, the error is passed on, the rest stays', async () => {
    const { dir, key } = await filled(3);
    const buf = await OfflineBuffer.open({ dir, key });
    await expect(
      buf.drain((m) => {
        if (m.seq === 2) throw new Error('broker went away');
        return true;
      }),
    ).rejects.toThrow('broker went away');
    expect((await drainAll(buf)).map((m) => m.seq)).toEqual([2, 3]);
    expect(buf.stats().records).toBe(0);
    await buf.close();
  });

  it.each([1, 5, 12, 20, 'all-but-one'] as const)('a torn last record (cut %s bytes in) is discarded, not fatal', async (cut) => {
    const { dir, key, path } = await filled(4);
    const full = await readFile(path);
    const last = frames(full)[3]!;
    const at = cut === 'all-but-one' ? last.end - 1 : last.start + cut;
    await writeFile(path, full.subarray(0, at), { mode: 0o600 }); // power lost mid-write of record 4
    const buf = await OfflineBuffer.open({ dir, key });
    expect(buf.stats()).toMatchObject({ records: 3, nextSeq: 4, tornBytesDiscarded: at - last.start });
    expect((await stat(path)).size).toBe(last.start);
    expect((await buf.append('telemetry', Buffer.from('new 4'))).seq).toBe(4);
    expect((await drainAll(buf)).map((m) => m.payload.toString())).toEqual(['reading 1', 'reading 2', 'reading 3', 'new 4']);
    await buf.close();
  });

  it('a zero-filled tail left by a crash is discarded too', async () => {
    const { dir, key, path } = await filled(2);
    await appendFile(path, Buffer.alloc(300));
    const buf = await OfflineBuffer.open({ dir, key });
    expect(buf.stats()).toMatchObject({ records: 2, tornBytesDiscarded: 300 });
    await buf.close();
  });

  it('is bounded: the oldest records are dropped and counted, the newest kept, the file never exceeds maxBytes', async () => {
    const dir = newDir();
    const key = randomBytes(32);
    const maxBytes = 4096;
    let buf = await OfflineBuffer.open({ dir, key, maxBytes });
    let droppedByAppends = 0;
    for (let i = 1; i <= 100; i++) {
      droppedByAppends += (await buf.append('telemetry', Buffer.alloc(150, i))).dropped;
      expect((await stat(join(dir, LOG_FILE))).size).toBeLessThanOrEqual(maxBytes);
    }
    const s = buf.stats();
    expect(s.dropped).toBe(droppedByAppends);
    expect(s.dropped + s.records).toBe(100);
    expect(s.records).toBeGreaterThan(10);
    await buf.close();
    buf = await OfflineBuffer.open({ dir, key, maxBytes });
    expect(buf.stats().dropped).toBe(droppedByAppends); // the count is persisted
    const kept = await drainAll(buf);
    expect(kept.map((m) => m.seq)).toEqual(Array.from({ length: s.records }, (_, i) => 101 - s.records + i)); // the newest, contiguous
    expect(kept.at(-1)!.payload.equals(Buffer.alloc(150, 100))).toBe(true);
    await buf.close();
  });

  it('with a protector: the data key is sealed in a 0600 envelope, and no payload is readable on disk', async () => {
    const dir = newDir();
    const protector = { kind: 'passphrase' as const, passphrase: 'offline buffer passphrase' };
    const secretPayload = `secret-telemetry-${randomBytes(8).toString('hex')}`;
    let buf = await OfflineBuffer.open({ dir, protector });
    await buf.append('telemetry', Buffer.from(secretPayload));
    await buf.close();
    expect((await stat(join(dir, DATA_KEY_FILE))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, LOG_FILE))).mode & 0o777).toBe(0o600);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    for (const f of await readdir(dir)) expect((await readFile(join(dir, f))).includes(Buffer.from(secretPayload))).toBe(false);
    buf = await OfflineBuffer.open({ dir, protector });
    expect((await drainAll(buf)).map((m) => m.payload.toString())).toEqual([secretPayload]);
    await buf.close();
  });

  it('concurrent appends get consecutive sequence numbers and drain in that order', async () => {
    const dir = newDir();
    const buf = await OfflineBuffer.open({ dir, key: randomBytes(32), sync: false });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => buf.append('telemetry', Buffer.from(String(i)))));
    expect(results.map((r) => r.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    const drained = await drainAll(buf);
    expect(drained.map((m) => m.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(drained.map((m) => m.payload.toString())).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
    await buf.close();
  });
});
