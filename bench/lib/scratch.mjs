// A benchmark's scratch space: a temp dir and the child processes it starts, both removed when the
// benchmark exits — normally, on failure or on Ctrl-C.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function scratch(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const children = [];
  let cleaned = false;
  const cleanup = () => {
    if (cleaned) return;
    cleaned = true;
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
  /**
   * Ends the children and waits for them: a child reaped by this process has its CPU counted in
   * ours (cutime), so npm run bench does not take it for another process disturbing the run.
   */
  const stop = async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const t = setTimeout(() => c.kill('SIGKILL'), 5000);
            c.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            c.kill('SIGTERM');
          }),
      ),
    );
    cleanup();
  };
  return { dir, children, cleanup, stop };
}
