/**
 * Runs `fn` over `items` with at most `limit` in flight, in order of `items`; stops taking new
 * items once `stop()` says so (SIGINT). Failures are the callback's business: `fn` must not throw.
 */
export async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>, stop: () => boolean = () => false): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (!stop() && next < items.length) {
      const i = next++;
      await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
