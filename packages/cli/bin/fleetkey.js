#!/usr/bin/env node
// Thin launcher so the bin exists before the first build; the program lives in dist/.
import('../dist/main.js').then((m) => m.main(process.argv)).catch((e) => {
  process.stderr.write(`fleetkey: ${e && e.message ? e.message : String(e)}\n`);
  process.exit(70);
});
