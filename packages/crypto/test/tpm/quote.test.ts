/**
 * Issue 13: the quote parsers are strict and total. A quote recorded from swtpm (tpm2_quote over
 * sha256:0,1,2,7 with nonce 0011223344556677, ECDSA P-256 AK from tpm2_createak) is the vector;
 * every mutation and every random input is a catalogue refusal, never another exception.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FleetkeyError } from '@fleetkey/protocol';
import {
  buildEventLog,
  encodePcrSelection,
  parseEventLog,
  parseQuote,
  parseSignature,
  parseTpm2bPublic,
  pcrDigestOf,
  replayEventLog,
  tpmPublicToKeyObject,
  verifyQuoteSignature,
} from '../../src/index.js';

const AK = Buffer.from(
  '00580023000b00050072000000100018000b000300100020184d380a34d84f1f5fa0d23e00a81c3455cc6f8ecd82ffd131ac92acfc1f8c150020a3124259f73493babd8341f53e53dab8ea40f71ce4c521990414f66467ba3003',
  'hex',
);
const MSG = Buffer.from(
  'ff54434780180022000bef0ba2ac362851346e295636c7027e189bd6486ed837c5a556e78ac34eaf6b01000800112233445566770000000000000e2c000000020000000001201910230016363600000001000b03870000002038723a2e5e8a17aa7950dc008209944e898f69a7bd10a23c839d341e935fd5ca',
  'hex',
);
const SIG = Buffer.from(
  '0018000b00200d78cff6ddde6c8b6d4cdd5bb40040bdf416d7271a0990436cd5d231949012e100209236a97d658b5dbc0c639e402546728c1d1167ee5b3cd9589991e5e01035f7eb',
  'hex',
);
const ak = parseTpm2bPublic(AK);
const akKey = tpmPublicToKeyObject(ak);

function code(f: () => unknown): string | null {
  try {
    f();
    return null;
  } catch (e) {
    if (!(e instanceof FleetkeyError)) throw e; // anything else fails the test
    return e.code;
  }
}

describe('TPMS_ATTEST quote parsing and verification', () => {
  it('fail: every truncation, bit flip and trailing byte of a real quote is ATTESTATION_QUOTE_MALFORMED or fails the signature', () => {
    for (let n = 0; n < MSG.length; n++) expect(code(() => parseQuote(MSG.subarray(0, n)))).toBe('ATTESTATION_QUOTE_MALFORMED');
    expect(code(() => parseQuote(Buffer.concat([MSG, Buffer.from([0])])))).toBe('ATTESTATION_QUOTE_MALFORMED');
    const sig = parseSignature(SIG);
    for (let i = 0; i < MSG.length; i++) {
      const m = Buffer.from(MSG);
      m[i] = (m[i] as number) ^ 0x01;
      const c = code(() => parseQuote(m));
      if (c === null) expect(verifyQuoteSignature(ak, akKey, m, sig)).toBe(false);
      else expect(c).toBe('ATTESTATION_QUOTE_MALFORMED');
    }
  });

  it('fail: random bytes and random mutations never escape the catalogue (fuzz)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        const c1 = code(() => parseQuote(bytes));
        const c2 = code(() => parseSignature(bytes));
        expect([null, 'ATTESTATION_QUOTE_MALFORMED']).toContain(c1);
        expect([null, 'ATTESTATION_QUOTE_MALFORMED']).toContain(c2);
      }),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(MSG.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), (edits) => {
        const m = Buffer.from(MSG);
        for (const [i, v] of edits) m[i] = v;
        expect([null, 'ATTESTATION_QUOTE_MALFORMED']).toContain(code(() => parseQuote(m)));
      }),
      { numRuns: 3000 },
    );
  });

  it('fail: a signature with another hash or scheme than the AK fixes is refused, not verified', () => {
    const s = Buffer.from(SIG);
    s.writeUInt16BE(0x0004, 2); // claims SHA-1
    expect(verifyQuoteSignature(ak, akKey, MSG, parseSignature(s))).toBe(false);
    const rsa = Buffer.concat([Buffer.from('0014000b0004', 'hex'), Buffer.alloc(4)]);
    expect(verifyQuoteSignature(ak, akKey, MSG, parseSignature(rsa))).toBe(false);
  });

  it('parses the swtpm quote: magic, type, nonce, selection; the signature verifies and the digest is SHA-256 of the PCR values', () => {
    const q = parseQuote(MSG);
    expect(q.extraData.toString('hex')).toBe('0011223344556677');
    expect(q.pcrSelect).toEqual([{ hash: 'sha256', pcrs: [0, 1, 2, 7] }]);
    expect(verifyQuoteSignature(ak, akKey, MSG, parseSignature(SIG))).toBe(true);
    const values = new Map([0, 1, 2, 7].map((p) => [`sha256:${p}`, Buffer.alloc(32)]));
    expect(pcrDigestOf('sha256', q.pcrSelect, values).equals(q.pcrDigest)).toBe(true);
    values.set('sha256:7', Buffer.alloc(32, 1));
    expect(pcrDigestOf('sha256', q.pcrSelect, values).equals(q.pcrDigest)).toBe(false);
    expect(encodePcrSelection(q.pcrSelect).toString('hex')).toBe('00000001000b03870000');
  });
});

describe('TCG event log', () => {
  const d = (s: string) => createHash('sha256').update(s).digest();
  it('replays to the PCR values an extend sequence gives, skipping EV_NO_ACTION', () => {
    const log = buildEventLog([
      { pcr: 0, type: 0x80000008, sha256: d('firmware') },
      { pcr: 7, type: 0x80000001, sha256: d('secure boot on') },
      { pcr: 0, type: 0x00000003, sha256: d('ignored') },
    ]);
    const pcrs = replayEventLog(parseEventLog(log), 'sha256');
    const ext = (cur: Buffer, x: Buffer) => createHash('sha256').update(cur).update(x).digest();
    expect(pcrs.get(0)?.equals(ext(Buffer.alloc(32), d('firmware')))).toBe(true);
    expect(pcrs.get(7)?.equals(ext(Buffer.alloc(32), d('secure boot on')))).toBe(true);
  });
  it('fail: truncated, oversized or undeclared-algorithm logs are ATTESTATION_EVENT_LOG_INVALID (fuzz)', () => {
    const log = buildEventLog([{ pcr: 0, type: 1, sha256: d('x') }]);
    for (let n = 1; n < log.length; n++) {
      if (n === 65) continue; // the Spec ID header alone (32 + 33 bytes) is a valid, empty log
      const c = code(() => parseEventLog(log.subarray(0, n)));
      expect(c).toBe('ATTESTATION_EVENT_LOG_INVALID');
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect([null, 'ATTESTATION_EVENT_LOG_INVALID']).toContain(code(() => parseEventLog(Buffer.concat([log.subarray(0, 65), bytes]))));
      }),
      { numRuns: 2000 },
    );
  });
});
