import type { File, Task } from '@vitest/runner';
import type { Reporter } from 'vitest/reporters';

/** Prints the plain closing line CI reads for any runner: `N passed, N failed, N skipped`. */
export default class SummaryReporter implements Reporter {
  onFinished(files: File[] = [], errors: unknown[] = []): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const walk = (t: Task): void => {
      if (t.type === 'suite') {
        t.tasks.forEach(walk);
        return;
      }
      const state = t.result?.state;
      if (state === 'pass') passed += 1;
      else if (state === 'fail') failed += 1;
      else skipped += 1;
    };
    files.forEach((f) => {
      if (f.result?.state === 'fail' && f.tasks.length === 0) failed += 1; // a file that failed to load
      f.tasks.forEach(walk);
    });
    failed += errors.length;
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
