import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

/** One secret and the forms a copy of it could take inside a JS heap. */
export interface Needle {
  readonly what: string;
  readonly bytes: Buffer;
}

/** Text encodings a program might have turned the secret into (and JS cannot wipe). */
export function textForms(b: Buffer): string[] {
  return [b.toString('hex'), b.toString('hex').toUpperCase(), b.toString('base64'), b.toString('base64url'), b.toString('base64').replace(/=+$/, '')];
}

/**
 * Searches a V8 heap snapshot's string table: every JS string alive after GC, in every text form
 * above, and one-byte strings read as raw bytes (latin1). A PEM body is searched with its line
 * breaks removed. Returns what was found, with a short context.
 */
export function searchHeapSnapshot(path: string, needles: readonly Needle[]): string[] {
  const snap = JSON.parse(readFileSync(path, 'utf8')) as { strings: string[] };
  const hits: string[] = [];
  for (const n of needles) {
    const forms = textForms(n.bytes);
    for (const s of snap.strings) {
      const flat = s.includes('PRIVATE KEY') ? s.replace(/\s+/g, '') : s;
      const form = forms.find((f) => flat.includes(f));
      if (form !== undefined) hits.push(`${n.what} as text in a heap string (${s.length} chars)`);
      else if (s.length >= n.bytes.length && Buffer.from(s, 'latin1').includes(n.bytes)) hits.push(`${n.what} as raw bytes in a heap string`);
    }
  }
  return hits;
}

/**
 * Searches every readable mapping of process `pid` (/proc/<pid>/maps and /proc/<pid>/mem: the V8
 * heap, ArrayBuffer backing stores, OpenSSL's and libc's heap, freed memory not yet reused) for
 * the raw bytes of each needle. Returns the needles found, with the mapping they are in.
 */
export function searchProcessMemory(pid: number, needles: readonly Needle[]): string[] {
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8').trim().split('\n');
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  const hits: string[] = [];
  const overlap = Math.max(...needles.map((n) => n.bytes.length));
  const chunk = Buffer.alloc(8 << 20);
  try {
    for (const line of maps) {
      const [range, perms, , , , ...rest] = line.split(/\s+/);
      const label = rest.join(' ');
      if (perms === undefined || range === undefined || !perms.startsWith('r') || label === '[vvar]' || label === '[vsyscall]' || label === '[vvar_vclock]') continue;
      const [lo, hi] = range.split('-').map((h) => Number.parseInt(h, 16)) as [number, number];
      for (let at = lo; at < hi; at += chunk.length - overlap) {
        const len = Math.min(chunk.length, hi - at);
        let got = 0;
        try {
          got = readSync(fd, chunk, 0, len, at);
        } catch {
          break; // unreadable range (guard pages)
        }
        const view = chunk.subarray(0, got);
        for (const n of needles) if (view.includes(n.bytes)) hits.push(`${n.what} at 0x${(at + view.indexOf(n.bytes)).toString(16)} in ${label || 'anonymous'} ${perms}`);
        if (at + len >= hi) break;
      }
    }
  } finally {
    closeSync(fd);
    chunk.fill(0);
  }
  return hits;
}
