import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(`./packages/${p}/src/index.ts`, import.meta.url));

// Tests import the workspace packages from source so a test run never depends on a stale build;
// the CLI tests alone run the built binary, which `npm test` builds first.
export default defineConfig({
  resolve: {
    alias: {
      '@fleetkey/protocol/base': fileURLToPath(new URL('./packages/protocol/src/base.ts', import.meta.url)),
      '@fleetkey/protocol': src('protocol'),
      '@fleetkey/crypto': src('crypto'),
      '@fleetkey/server': src('server'),
      '@fleetkey/device': src('device'),
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default', './scripts/summary-reporter.ts'],
  },
});
