import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeBase64Secret } from '../../src/provisioning/bundle.js';

describe('decodeBase64Secret (the device key read without a JS string)', () => {
  it('decodes what Buffer encodes, every length 1..80, with and without a trailing newline', () => {
    for (let n = 1; n <= 80; n++) {
      const b = randomBytes(n);
      for (const text of [b.toString('base64'), `${b.toString('base64')}\n`, `${b.toString('base64')}\r\n`]) {
        expect(decodeBase64Secret(Buffer.from(text))?.equals(b), `${n} ${JSON.stringify(text)}`).toBe(true);
      }
    }
  });

  it('fail: anything but RFC 4648 base64 is refused (url alphabet, inner spaces, bad padding, empty)', () => {
    for (const text of ['', '\n', 'ab-_', 'ab cd', 'abc', 'ab=c', 'a===', '====', 'abcd=', 'YWJj\u00e9']) {
      expect(decodeBase64Secret(Buffer.from(text)), JSON.stringify(text)).toBeUndefined();
    }
  });
});
