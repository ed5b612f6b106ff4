/**
 * Shared-access-signature tokens for symmetric-key devices:
 *
 *   sr=<encodeURIComponent(resource)>&se=<expiry, unix seconds>&sig=<encodeURIComponent(base64(
 *       HMAC-SHA256(deviceKey, resource + "\n" + expiry)))>
 *
 * The three fields may come in any order, each exactly once; both encoded fields must be in the
 * canonical encodeURIComponent form, so one token has exactly one spelling (a replay guard keyed
 * on it cannot be dodged by re-encoding).
 */
import { createHash } from 'node:crypto';
import { hmacSha256 } from '../primitives/hmac-hkdf.js';
import { timingSafeEqualBytes } from '../primitives/bytes.js';
import type { ReplayGuard } from './replay-guard.js';

export const SAS_MAX_TOKEN_LENGTH = 2048;
export const SAS_MAX_RESOURCE_BYTES = 1024;
const MIN_KEY_BYTES = 16;
const EXPIRY = /^[1-9][0-9]{0,11}$/;
const SIG_B64 = /^[A-Za-z0-9+/]{43}=$/;
/** C0 controls and DEL (a "\n" would blur the signed string's separator), and lone surrogates. */
const FORBIDDEN = /[\u0000-\u001f\u007f]|\p{Cs}/u;

export type SasRefusal =
  | 'malformed'
  | 'resource_mismatch'
  | 'bad_signature'
  | 'expired'
  | 'lifetime_too_long'
  | 'replayed'
  | 'replay_capacity';

export type SasVerifyResult = { ok: true; resource: string; expiresAt: Date } | { ok: false; reason: SasRefusal };

export interface CreateSasTokenOptions {
  resource: string;
  /** Truncated to whole seconds. */
  expiresAt: Date;
  key: Uint8Array;
}

export interface VerifySasTokenOptions {
  expectedResource: string;
  key: Uint8Array;
  /** Default: the current time. */
  now?: Date;
  /** Refuse tokens expiring further than this from `now` (a stolen token's useful life). */
  maxLifetimeSeconds: number;
  /** Present → the token is single-use: a second presentation is refused as `replayed`. */
  replay?: ReplayGuard;
}

function checkKey(key: Uint8Array): void {
  if (key.length < MIN_KEY_BYTES) throw new RangeError(`SAS key must be at least ${MIN_KEY_BYTES} bytes`);
}

function validResource(r: string): boolean {
  return r.length > 0 && Buffer.byteLength(r, 'utf8') <= SAS_MAX_RESOURCE_BYTES && !FORBIDDEN.test(r);
}

function mac(key: Uint8Array, resource: string, expiry: number): Buffer {
  return hmacSha256(key, `${resource}\n${expiry}`);
}

/**
 * Signs a token for `resource` valid until `expiresAt`.
 * @example createSasToken({ resource: 'fleetkey/devices/c2c38155-...', expiresAt: new Date(Date.now() + 3600e3), key })
 */
export function createSasToken(options: CreateSasTokenOptions): string {
  checkKey(options.key);
  if (!validResource(options.resource)) throw new TypeError('SAS resource must be 1..1024 bytes of printable text');
  const se = Math.floor(options.expiresAt.getTime() / 1000);
  if (!EXPIRY.test(String(se))) throw new RangeError('SAS expiry must be a positive unix time');
  const sig = mac(options.key, options.resource, se).toString('base64');
  return `sr=${encodeURIComponent(options.resource)}&se=${se}&sig=${encodeURIComponent(sig)}`;
}

interface ParsedSas {
  resource: string;
  expiry: number;
  sig: Buffer;
}

function decodeCanonical(raw: string): string | undefined {
  let value: string;
  try {
    value = decodeURIComponent(raw);
  } catch {
    return undefined;
  }
  return encodeURIComponent(value) === raw ? value : undefined;
}

/** Strict parse; undefined for anything that is not exactly a well-formed token. */
export function parseSasToken(token: string): ParsedSas | undefined {
  if (token.length === 0 || token.length > SAS_MAX_TOKEN_LENGTH) return undefined;
  const parts = token.split('&');
  if (parts.length !== 3) return undefined;
  const fields = new Map<string, string>();
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq <= 0) return undefined;
    const name = part.slice(0, eq);
    if ((name !== 'sr' && name !== 'se' && name !== 'sig') || fields.has(name)) return undefined;
    fields.set(name, part.slice(eq + 1));
  }
  const resource = decodeCanonical(fields.get('sr') ?? '');
  const se = fields.get('se') ?? '';
  const sigB64 = decodeCanonical(fields.get('sig') ?? '');
  if (resource === undefined || !validResource(resource)) return undefined;
  if (!EXPIRY.test(se)) return undefined;
  if (sigB64 === undefined || !SIG_B64.test(sigB64)) return undefined;
  const sig = Buffer.from(sigB64, 'base64');
  // 43 chars + "=" can carry stray low bits in the last char: refuse the non-canonical spelling.
  if (sig.length !== 32 || sig.toString('base64') !== sigB64) return undefined;
  return { resource, expiry: Number(se), sig };
}

/**
 * Verifies a SAS token. Never throws on bad input: the refusal reason is returned for the audit
 * log, and the caller answers with one neutral error (see {@link sasRefusalCode}).
 * Checks, in order: strict parse, resource, signature (constant time), expiry, lifetime, replay.
 */
export async function verifySasToken(token: string, options: VerifySasTokenOptions): Promise<SasVerifyResult> {
  checkKey(options.key);
  if (!Number.isInteger(options.maxLifetimeSeconds) || options.maxLifetimeSeconds < 1) {
    throw new RangeError('maxLifetimeSeconds must be a positive integer');
  }
  const parsed = parseSasToken(token);
  if (parsed === undefined) return { ok: false, reason: 'malformed' };
  if (parsed.resource !== options.expectedResource) return { ok: false, reason: 'resource_mismatch' };
  if (!timingSafeEqualBytes(mac(options.key, parsed.resource, parsed.expiry), parsed.sig)) {
    return { ok: false, reason: 'bad_signature' };
  }
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  if (parsed.expiry <= now) return { ok: false, reason: 'expired' };
  if (parsed.expiry - now > options.maxLifetimeSeconds) return { ok: false, reason: 'lifetime_too_long' };
  if (options.replay !== undefined) {
    // Keyed on a hash of resource and signature: fixed-size entries whatever the resource length.
    const id = createHash('sha256').update(parsed.resource).update('\n').update(parsed.sig).digest('base64');
    const verdict = await options.replay.markUsed(id, parsed.expiry, now);
    if (verdict === 'replayed') return { ok: false, reason: 'replayed' };
    if (verdict === 'full') return { ok: false, reason: 'replay_capacity' };
  }
  return { ok: true, resource: parsed.resource, expiresAt: new Date(parsed.expiry * 1000) };
}

/** The catalogue code a caller throws for a refusal; all SAS codes share one neutral message. */
export function sasRefusalCode(
  reason: SasRefusal,
): 'SAS_TOKEN_MALFORMED' | 'SAS_TOKEN_INVALID' | 'SAS_TOKEN_EXPIRED' | 'SAS_TOKEN_REPLAYED' | 'RATE_LIMITED' {
  switch (reason) {
    case 'malformed':
      return 'SAS_TOKEN_MALFORMED';
    case 'expired':
      return 'SAS_TOKEN_EXPIRED';
    case 'replayed':
      return 'SAS_TOKEN_REPLAYED';
    case 'replay_capacity':
      return 'RATE_LIMITED'; // a legitimate device may retry once older tokens have expired
    default:
      return 'SAS_TOKEN_INVALID';
  }
}
