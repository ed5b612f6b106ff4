#!/usr/bin/env node
// npm run fuzz -- --packets 1000000 [--seed S] [--concurrency C] [--json]
// The long form of packages/server/test/gateway/fuzz-gateway.test.ts: the same generator and
// campaign (packages/server/test/gateway/support/fuzz), run through vite-node so it uses the
// TypeScript sources exactly as the tests do. Prints packets sent, crashes, faults survived, the
// good device's QoS 1 acknowledgements and the gateway's RSS/heap before and after.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const child = spawn(
  process.execPath,
  [`${root}node_modules/vite-node/vite-node.mjs`, '--config', `${root}vitest.config.ts`, `${root}packages/server/test/gateway/support/fuzz/cli.ts`, '--', ...process.argv.slice(2)],
  { cwd: root, stdio: 'inherit' },
);
child.on('exit', (code, signal) => process.exit(code ?? (signal === null ? 1 : 1)));
