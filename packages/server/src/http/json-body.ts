import { FleetkeyError } from '@fleetkey/protocol';
import type { FastifyInstance } from 'fastify';

const malformed = (detail: string) => new FleetkeyError('MALFORMED_JSON', { detail });

interface Frame {
  readonly object: boolean;
  readonly keys: Set<string>;
  /** The key this object is the value of, in its parent object (for constructor.prototype). */
  readonly under: string | null;
  expectKey: boolean;
  lastKey: string | null;
}

/**
 * Parses a JSON request body and refuses what JSON.parse silently accepts:
 * - duplicate member names (RFC 8259 §4: "names within an object SHOULD be unique"; with
 *   JSON.parse the last one wins, so `{"role":"viewer","role":"admin"}` passes a reviewer who
 *   reads the first and the server acts on the second; escapes count: `"r\u006fle"` is `role`);
 * - prototype poisoning: a `__proto__` member, or `constructor` holding `prototype`, at any depth
 *   (what fastify's secure-json-parse refused before this parser replaced it).
 * The text is parsed by JSON.parse first, so the scan below only ever walks valid JSON.
 */
export function parseStrictJson(text: string): unknown {
  if (text.trim() === '') throw malformed('empty body');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw malformed('not JSON');
  }
  const stack: Frame[] = [];
  const top = (): Frame | undefined => stack[stack.length - 1];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      const parent = top();
      stack.push({ object: c === 0x7b, keys: new Set(), under: parent?.object === true ? parent.lastKey : null, expectKey: c === 0x7b, lastKey: null });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const f = top();
      if (f?.object === true) f.expectKey = true;
    } else if (c === 0x22 /* " */) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      const f = top();
      if (f?.object === true && f.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (f.keys.has(key)) throw malformed('duplicate member name');
        if (key === '__proto__') throw malformed('__proto__ member');
        if (key === 'prototype' && f.under === 'constructor') throw malformed('constructor.prototype member');
        f.keys.add(key);
        f.lastKey = key;
        f.expectKey = false;
      }
      i = j;
    }
  }
  return value;
}

/**
 * Replaces fastify's application/json parser with the strict one, under the same body limit,
 * and drops its text/plain parser: the operator API takes JSON only (415 otherwise).
 */
export function installStrictJson(app: FastifyInstance): void {
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, parseStrictJson(body as string));
    } catch (e) {
      done(e as Error, undefined);
    }
  });
}
