import { FleetkeyError } from '@fleetkey/protocol';

/**
 * A bounds-checked big-endian reader over TPM marshalled structures (TPM 2.0 Part 2 §5: all
 * integers are big-endian, sized buffers are a UINT16 size then that many bytes). Every read past
 * the end throws TPM_PUBLIC_MALFORMED instead of returning undefined or a short buffer.
 */
export class TpmReader {
  private offset = 0;

  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}

  get position(): number {
    return this.offset;
  }

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  fail(reason: string): never {
    throw new FleetkeyError('TPM_PUBLIC_MALFORMED', { detail: `${this.what}: ${reason} at offset ${this.offset}` });
  }

  private need(n: number, field: string): void {
    if (this.remaining < n) this.fail(`truncated ${field} (need ${n} bytes, have ${this.remaining})`);
  }

  u16(field: string): number {
    this.need(2, field);
    const v = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return v;
  }

  u32(field: string): number {
    this.need(4, field);
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  bytes(n: number, field: string): Buffer {
    this.need(n, field);
    // Copy: callers keep these and must not alias (and pin) the caller's input buffer.
    const v = Buffer.from(this.buf.subarray(this.offset, this.offset + n));
    this.offset += n;
    return v;
  }

  /** A TPM2B_*: UINT16 size then the bytes; `max` is the structure's declared maximum. */
  sized(field: string, max: number): Buffer {
    const size = this.u16(`${field}.size`);
    if (size > max) this.fail(`${field}.size ${size} exceeds ${max}`);
    return this.bytes(size, field);
  }

  end(): void {
    if (this.remaining !== 0) this.fail(`${this.remaining} trailing bytes`);
  }
}
