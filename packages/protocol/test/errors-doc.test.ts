import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { ERROR_DOMAINS, ERRORS, FleetkeyError } from '../src/index.js';

const DOC = fileURLToPath(new URL('../../../docs/errors.md', import.meta.url));

function render(): string {
  const out = [
    '# Error codes',
    '',
    'Every refusal Fleetkey gives carries one of these codes in `code`, with the neutral message below.',
    'Callers branch on `code`, never on the message. The detail of a refusal (which check failed) is',
    'written to the audit log and the server log, never sent to the caller.',
    '',
    'This file is generated from `packages/protocol/src/errors/`; a test fails when the two differ.',
    'Regenerate with `UPDATE_DOCS=1 npx vitest run packages/protocol/test/errors-doc.test.ts`.',
    '',
  ];
  for (const d of ERROR_DOMAINS) {
    const codes = Object.entries(d.errors);
    if (codes.length === 0) continue;
    out.push(`## ${d.title}`, '', '| code | HTTP | message |', '| --- | --- | --- |');
    for (const [code, spec] of codes) out.push(`| \`${code}\` | ${spec.status} | ${spec.message.replaceAll('|', '\\|')} |`);
    out.push('');
  }
  return out.join('\n');
}

describe('error catalogue', () => {
  test('docs/errors.md lists exactly the catalogue', () => {
    const expected = render();
    if (process.env['UPDATE_DOCS'] === '1') writeFileSync(DOC, expected);
    expect(readFileSync(DOC, 'utf8')).toBe(expected);
  });

  test('no code is defined in two domains, and the merged catalogue holds them all', () => {
    const all = ERROR_DOMAINS.flatMap((d) => Object.keys(d.errors));
    expect(new Set(all).size).toBe(all.length);
    expect(Object.keys(ERRORS).sort()).toEqual([...all].sort());
  });

  test('codes are UPPER_SNAKE, statuses are HTTP errors, messages are neutral sentences', () => {
    for (const [code, spec] of Object.entries(ERRORS)) {
      expect(code).toMatch(/^[A-Z][A-Z0-9_]+$/);
      expect(spec.status).toBeGreaterThanOrEqual(400);
      expect(spec.status).toBeLessThan(600);
      expect(spec.message).toMatch(/^[A-Z].*\.$/);
    }
  });

  test('FleetkeyError keeps the detail out of the message', () => {
    const e = new FleetkeyError('DEVICE_NOT_FOUND', { detail: 'secret-looking detail' });
    expect(e.message).toBe(ERRORS.DEVICE_NOT_FOUND.message);
    expect(String(e)).not.toContain('secret-looking');
    expect(e.detail).toBe('secret-looking detail'); // kept for the audit log and server log
  });
});
