/**
 * Property-based checks of the shared decoder on arbitrary bytes. Live connections are fuzzed by
 * fuzz-gateway.test.ts with raw frames built by support/fuzz (this file's earlier live fuzzing
 * generated packets with mqtt-packet, whose encoder cannot write the packets that crashed the
 * gateway, issue 11).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkConnect, checkFrame } from '../../src/modules/gateway/frame-check.js';
import { decodeFrame, frameLength, HEADER_INCOMPLETE, HEADER_MALFORMED } from '../../src/modules/gateway/frame-codec.js';

describe('fuzz', () => {
  it('decodeFrame and frameLength never throw on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.constantFrom(4, 5) as fc.Arbitrary<4 | 5>, (bytes, version) => {
        const buf = Buffer.from(bytes);
        const len = buf.length === 0 ? HEADER_INCOMPLETE : frameLength(buf, 0);
        if (len > 0 && len <= buf.length) {
          const r = decodeFrame(buf.subarray(0, len), version);
          expect(r instanceof Error || typeof r.cmd === 'string').toBe(true);
        } else {
          expect([HEADER_INCOMPLETE, HEADER_MALFORMED].includes(len) || len > buf.length).toBe(true);
        }
      }),
      { numRuns: 3000 },
    );
    // The shared parser is still sane after all that.
    expect(decodeFrame(Buffer.from([0xc0, 0x00]), 5)).toMatchObject({ cmd: 'pingreq' });
  });

  it('regression: a packet that fails mid-parse does not corrupt the next frame on the shared parser', () => {
    // CONNACK with bad flags fails after reading one byte; mqtt-packet used to keep that offset.
    expect(decodeFrame(Buffer.from('200133', 'hex'), 4)).toBeInstanceOf(Error);
    expect(decodeFrame(Buffer.from([0xc0, 0x00]), 4)).toMatchObject({ cmd: 'pingreq' });
  });

  it('frame checks never throw on arbitrary bytes: they answer a violation or nothing', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 120 }), fc.constantFrom(4, 5) as fc.Arbitrary<4 | 5>, (first, body, version) => {
        const len: number[] = [];
        let n = body.length;
        do {
          len.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
          n >>= 7;
        } while (n > 0);
        const frame = Buffer.concat([Buffer.from([first, ...len]), Buffer.from(body)]);
        for (const v of [checkFrame(frame, version), checkConnect(frame)]) {
          if (v !== undefined) expect([0x81, 0x82, 0x90]).toContain(v.code);
        }
      }),
      { numRuns: 5000 },
    );
  });
});
