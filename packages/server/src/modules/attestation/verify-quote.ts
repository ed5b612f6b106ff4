import { timingSafeEqual } from 'node:crypto';
import {
  checkAkAttributes,
  parseEventLog,
  parseQuote,
  parseSignature,
  parseTpm2bPublic,
  pcrDigestOf,
  replayEventLog,
  tpmPublicToKeyObject,
  verifyQuoteSignature,
  type TpmPublic,
  type TpmQuote,
} from '@fleetkey/crypto';
import { FleetkeyError, type ErrorCode } from '@fleetkey/protocol';
import type { KeyObject } from 'node:crypto';

/** What a policy requires of a quote (one SHA-256 bank). */
export interface QuotePolicy {
  readonly pcrs: readonly number[];
  /** Accepted values per PCR; a PCR not listed here is only quoted, not judged. */
  readonly reference: Readonly<Record<string, readonly string[]>> | null;
  /** Allowed event digests per PCR, for an event-log replay. */
  readonly eventLog: Readonly<Record<string, readonly string[]>> | null;
}

/** A recorded AK, parsed once and cached (re-parsing a key per quote is the slow part). */
export interface AttestationKey {
  readonly pub: TpmPublic;
  readonly key: KeyObject;
}

export function loadAttestationKey(tpm2bPublicB64: string): AttestationKey {
  const pub = parseTpm2bPublic(Buffer.from(tpm2bPublicB64, 'base64'));
  checkAkAttributes(pub);
  return { pub, key: tpmPublicToKeyObject(pub) };
}

export interface QuoteInput {
  readonly quote: Buffer;
  readonly signature: Buffer;
  readonly pcrs: Readonly<Record<string, string>>;
  readonly eventLog: Buffer | undefined;
}

/** An authentic quote (signature, structure, selection and digest all hold) and its nonce. */
export interface AuthenticQuote {
  readonly quote: TpmQuote;
  readonly values: ReadonlyMap<number, Buffer>;
}

const refuse = (code: ErrorCode, detail: string): FleetkeyError => new FleetkeyError(code, { detail });

/**
 * Steps 1–4 of quote verification, in the order that costs an attacker most and us least:
 * structure, signature with the recorded AK, selection equal to the policy's, PCR digest equal to
 * the hash of the reported values. Nonce freshness (extraData) is the caller's, against the store.
 * Every failure is a catalogue refusal; nothing here throws anything else.
 */
export function authenticateQuote(ak: AttestationKey, input: QuoteInput, policy: QuotePolicy): AuthenticQuote {
  const quote = parseQuote(input.quote);
  const signature = parseSignature(input.signature);
  // TPM 2.0 Part 3 §18.4: the AK signs the TPMS_ATTEST bytes as the TPM marshalled them.
  if (!verifyQuoteSignature(ak.pub, ak.key, input.quote, signature)) throw refuse('ATTESTATION_SIGNATURE_INVALID', 'signature does not verify under the recorded AK');
  // Only the SHA-256 bank, exactly the policy's PCRs: a quote over fewer PCRs would leave a
  // measured component out of the judgement; over other banks, judge values nobody set.
  const want = [...policy.pcrs].sort((a, b) => a - b);
  const bank = quote.pcrSelect.length === 1 ? quote.pcrSelect[0] : undefined;
  if (bank === undefined || bank.hash !== 'sha256' || bank.pcrs.length !== want.length || bank.pcrs.some((p, i) => p !== want[i])) {
    throw refuse('ATTESTATION_PCR_SELECTION', `quoted ${quote.pcrSelect.map((b) => `${b.hash}:${b.pcrs.join(',')}`).join(' ') || 'nothing'}, policy sha256:${want.join(',')}`);
  }
  const reported = Object.keys(input.pcrs).map(Number).sort((a, b) => a - b);
  if (reported.length !== want.length || reported.some((p, i) => p !== want[i])) throw refuse('ATTESTATION_PCR_SELECTION', `reported PCRs ${reported.join(',')}, policy ${want.join(',')}`);
  const values = new Map<number, Buffer>();
  const byKey = new Map<string, Buffer>();
  for (const p of want) {
    const v = Buffer.from(input.pcrs[String(p)] as string, 'hex');
    values.set(p, v);
    byKey.set(`sha256:${p}`, v);
  }
  // Part 3 §18.4.1: pcrDigest is the hash (the signing scheme's) of the selected PCRs in order.
  const digest = pcrDigestOf(signature.hash, quote.pcrSelect, byKey);
  if (digest.length !== quote.pcrDigest.length || !timingSafeEqual(digest, quote.pcrDigest)) {
    throw refuse('ATTESTATION_PCR_DIGEST_MISMATCH', 'hash of the reported PCR values differs from the signed pcrDigest');
  }
  return { quote, values };
}

/**
 * Step 5, on an authentic and fresh quote: do the measured values match the policy? Reference
 * values first (each listed PCR must hold one of its accepted values), then the event log: it
 * must replay exactly to the quoted values of every policy PCR it covers, using only allowed
 * digests. Returns null when they match, or the reason they do not.
 */
export function judgeValues(values: ReadonlyMap<number, Buffer>, eventLog: Buffer | undefined, policy: QuotePolicy): { code: ErrorCode; reason: string } | null {
  if (policy.reference !== null) {
    for (const [pcr, accepted] of Object.entries(policy.reference)) {
      const v = values.get(Number(pcr));
      if (v === undefined) return { code: 'ATTESTATION_PCR_POLICY', reason: `PCR ${pcr} has a reference value but is not quoted` };
      if (!accepted.includes(v.toString('hex'))) return { code: 'ATTESTATION_PCR_POLICY', reason: `PCR ${pcr} = ${v.toString('hex')} is not a reference value` };
    }
  }
  if (policy.eventLog !== null) {
    if (eventLog === undefined) return { code: 'ATTESTATION_EVENT_LOG_INVALID', reason: 'policy replays the event log; none was sent' };
    let replayed: Map<number, Buffer>;
    let events;
    try {
      events = parseEventLog(eventLog);
      replayed = replayEventLog(events, 'sha256');
    } catch (e) {
      return { code: 'ATTESTATION_EVENT_LOG_INVALID', reason: e instanceof FleetkeyError ? (e.detail ?? e.code) : 'event log refused' };
    }
    for (const [pcr, allowed] of Object.entries(policy.eventLog)) {
      const n = Number(pcr);
      const quoted = values.get(n);
      if (quoted === undefined) return { code: 'ATTESTATION_PCR_POLICY', reason: `PCR ${pcr} is judged by the event log but not quoted` };
      const r = replayed.get(n) ?? Buffer.alloc(32);
      // The log is unsigned: only its replay equal to the signed values makes it evidence.
      if (!r.equals(quoted)) return { code: 'ATTESTATION_EVENT_LOG_INVALID', reason: `event log replays PCR ${pcr} to ${r.toString('hex')}, quoted ${quoted.toString('hex')}` };
      for (const e of events) {
        if (e.pcr !== n || e.type === 3) continue;
        const d = e.digests.get('sha256')?.toString('hex') ?? '';
        if (!allowed.includes(d)) return { code: 'ATTESTATION_PCR_POLICY', reason: `PCR ${pcr} event 0x${e.type.toString(16)} digest ${d} is not allowed` };
      }
    }
  }
  return null;
}
