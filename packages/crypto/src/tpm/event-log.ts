import { createHash } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import { hashById, type TpmHashName } from './constants.js';

/**
 * The TCG crypto-agile event log (`/sys/kernel/security/tpm0/binary_bios_measurements`), TCG PC
 * Client Platform Firmware Profile §10: a first TCG_PCR_EVENT (SHA-1 format) carrying the
 * "Spec ID Event03" header that lists the digest sizes, then TCG_PCR_EVENT2 records. All integers
 * in the log are little-endian (§10.2.1), unlike TPM structures.
 */
export interface TcgEvent {
  readonly pcr: number;
  readonly type: number;
  /** The event's digest in each bank the log carries. */
  readonly digests: ReadonlyMap<TpmHashName, Buffer>;
}

/** §10.4.1 EV_NO_ACTION: informational, never extended into a PCR. */
export const EV_NO_ACTION = 0x00000003;
/** A bounded log: a platform's is tens of kilobytes; refuse anything absurd before parsing. */
export const MAX_EVENT_LOG_BYTES = 1 << 20;
const MAX_EVENTS = 10_000;
const MAX_EVENT_DATA = 1 << 16;

function bad(detail: string): FleetkeyError {
  return new FleetkeyError('ATTESTATION_EVENT_LOG_INVALID', { detail });
}

class LeReader {
  off = 0;
  constructor(private readonly b: Buffer) {}
  need(n: number, what: string): void {
    if (this.b.length - this.off < n) throw bad(`truncated ${what} at offset ${this.off}`);
  }
  u8(w: string): number {
    this.need(1, w);
    return this.b[this.off++] as number;
  }
  u16(w: string): number {
    this.need(2, w);
    const v = this.b.readUInt16LE(this.off);
    this.off += 2;
    return v;
  }
  u32(w: string): number {
    this.need(4, w);
    const v = this.b.readUInt32LE(this.off);
    this.off += 4;
    return v;
  }
  bytes(n: number, w: string): Buffer {
    this.need(n, w);
    const v = Buffer.from(this.b.subarray(this.off, this.off + n));
    this.off += n;
    return v;
  }
  get done(): boolean {
    return this.off >= this.b.length;
  }
}

/**
 * Parses a crypto-agile event log strictly. Digest sizes come from the Spec ID header (§10.4.5.1);
 * an algorithm the header does not declare, or a size that disagrees with it, is refused.
 *
 * @throws FleetkeyError ATTESTATION_EVENT_LOG_INVALID
 */
export function parseEventLog(log: Uint8Array): TcgEvent[] {
  if (!(log instanceof Uint8Array) || log.length > MAX_EVENT_LOG_BYTES) throw bad('event log is not bytes or is too long');
  const r = new LeReader(Buffer.from(log.buffer, log.byteOffset, log.byteLength));
  // TCG_PCR_EVENT (§10.2.1): pcrIndex, eventType, SHA-1 digest[20], eventSize, event.
  r.u32('header.pcrIndex');
  const headerType = r.u32('header.eventType');
  if (headerType !== EV_NO_ACTION) throw bad('first event is not the EV_NO_ACTION Spec ID event');
  r.bytes(20, 'header.digest');
  const headerSize = r.u32('header.eventSize');
  if (headerSize > 4096) throw bad(`Spec ID event of ${headerSize} bytes`);
  const spec = new LeReader(r.bytes(headerSize, 'header.event'));
  const signature = spec.bytes(16, 'specId.signature');
  if (signature.toString('latin1') !== 'Spec ID Event03\0') throw bad('not a crypto-agile log (Spec ID Event03 missing)');
  spec.u32('specId.platformClass');
  spec.u8('specId.minor');
  spec.u8('specId.major');
  spec.u8('specId.errata');
  spec.u8('specId.uintnSize');
  const algCount = spec.u32('specId.numberOfAlgorithms');
  if (algCount === 0 || algCount > 8) throw bad(`Spec ID lists ${algCount} algorithms`);
  const sizes = new Map<number, number>();
  for (let i = 0; i < algCount; i++) sizes.set(spec.u16('specId.algorithmId'), spec.u16('specId.digestSize'));

  const events: TcgEvent[] = [];
  while (!r.done) {
    if (events.length >= MAX_EVENTS) throw bad(`more than ${MAX_EVENTS} events`);
    // TCG_PCR_EVENT2 (§10.2.2): pcrIndex, eventType, TPML_DIGEST_VALUES, eventSize, event.
    const pcr = r.u32('event.pcrIndex');
    if (pcr > 31) throw bad(`event PCR ${pcr} out of range`);
    const type = r.u32('event.eventType');
    const count = r.u32('event.digests.count');
    if (count === 0 || count > sizes.size) throw bad(`event carries ${count} digests`);
    const digests = new Map<TpmHashName, Buffer>();
    for (let i = 0; i < count; i++) {
      const alg = r.u16('event.digest.hashAlg');
      const size = sizes.get(alg);
      const info = hashById(alg);
      if (size === undefined || info === undefined || info.size !== size) throw bad(`event digest algorithm 0x${alg.toString(16)} not declared or unsupported`);
      if (digests.has(info.name)) throw bad(`event digest ${info.name} repeated`);
      digests.set(info.name, r.bytes(size, 'event.digest'));
    }
    const dataSize = r.u32('event.eventSize');
    if (dataSize > MAX_EVENT_DATA) throw bad(`event data of ${dataSize} bytes`);
    r.bytes(dataSize, 'event.data');
    events.push({ pcr, type, digests });
  }
  return events;
}

/**
 * Replays the log into PCR values of one bank (TPM 2.0 Part 1 §17.2: PCR_new = H(PCR_old || digest),
 * PCRs start at zero). EV_NO_ACTION events are skipped (§10.4.1). Returns every PCR the log extends.
 */
export function replayEventLog(events: readonly TcgEvent[], bank: TpmHashName): Map<number, Buffer> {
  const size = bank === 'sha1' ? 20 : bank === 'sha256' ? 32 : bank === 'sha384' ? 48 : 64;
  const pcrs = new Map<number, Buffer>();
  for (const e of events) {
    if (e.type === EV_NO_ACTION) continue;
    const d = e.digests.get(bank);
    if (d === undefined) throw bad(`event for PCR ${e.pcr} has no ${bank} digest`);
    const cur = pcrs.get(e.pcr) ?? Buffer.alloc(size);
    pcrs.set(e.pcr, createHash(bank).update(cur).update(d).digest());
  }
  return pcrs;
}

/** Builds a crypto-agile log of SHA-256 events: what tests (and simulated devices) supply. */
export function buildEventLog(events: readonly { pcr: number; type: number; sha256: Buffer; data?: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  const spec = Buffer.alloc(16 + 4 + 4 + 4 + 4 + 1);
  spec.write('Spec ID Event03\0', 0, 'latin1');
  spec.writeUInt32LE(0, 16); // platformClass: client
  spec[20] = 0; // minor
  spec[21] = 2; // major
  spec[22] = 0; // errata
  spec[23] = 2; // uintnSize (UINT64)
  spec.writeUInt32LE(1, 24);
  spec.writeUInt16LE(0x000b, 28);
  spec.writeUInt16LE(32, 30);
  spec[32] = 0; // vendorInfoSize
  const head = Buffer.alloc(4 + 4 + 20 + 4);
  head.writeUInt32LE(0, 0);
  head.writeUInt32LE(EV_NO_ACTION, 4);
  head.writeUInt32LE(spec.length, 28);
  parts.push(head, spec);
  for (const e of events) {
    const data = e.data ?? Buffer.alloc(0);
    const h = Buffer.alloc(4 + 4 + 4 + 2);
    h.writeUInt32LE(e.pcr, 0);
    h.writeUInt32LE(e.type, 4);
    h.writeUInt32LE(1, 8);
    h.writeUInt16LE(0x000b, 12);
    const tail = Buffer.alloc(4);
    tail.writeUInt32LE(data.length, 0);
    parts.push(h, e.sha256, tail, data);
  }
  return Buffer.concat(parts);
}
