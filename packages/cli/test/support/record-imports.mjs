// `node --import ./record-imports.mjs …`: appends the URL of every module the program resolves to
// the file in FLEETKEY_IMPORT_LOG (one per line), so a test can see what a command loaded.
import { register } from 'node:module';

const hooks = `
import { appendFileSync } from 'node:fs';
const file = process.env.FLEETKEY_IMPORT_LOG;
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (file) appendFileSync(file, r.url + '\\n');
  return r;
}`;
register(`data:text/javascript,${encodeURIComponent(hooks)}`, import.meta.url);
