import type { X509Certificate } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import type { Signer } from '../signer/signer.js';
import { bigintMagnitude, bitString, enumerated, seq, tlv, unsignedInteger, x509Time } from './der.js';
import { wholeSeconds } from './device-profile.js';
import { extension } from './issuer-template.js';
import { readIssuer } from './issuer.js';
import { OID } from './oids.js';
import { signatureAlgorithmId } from './signature-algorithm.js';

/** CRLReason names and values (RFC 5280 §5.3.1; 7 is unused). */
export const CRL_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const;
export type CrlReason = keyof typeof CRL_REASONS;

export interface CrlEntry {
  readonly serialHex: string;
  readonly revokedAt: Date;
  readonly reason?: CrlReason;
}

export interface BuildCrlOptions {
  readonly issuerCertificate: X509Certificate | Buffer | string;
  readonly signer: Signer;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  /** Monotonically increasing per issuer (RFC 5280 §5.2.3), < 2^159. */
  readonly crlNumber: bigint;
  readonly entries: readonly CrlEntry[];
}

const SERIAL_HEX = /^(?:[0-9a-fA-F]{2}){1,20}$/;
const MAX_CRL_NUMBER = (1n << 159n) - 1n; // 20 octets, positive (RFC 5280 §5.2.3)

/** Pre-encoded reasonCode entry extensions, one per reason value. */
const REASON_EXTENSIONS = new Map<number, Buffer>(
  Object.values(CRL_REASONS).map((v) => [v, seq(extension(OID.reasonCode, false, enumerated(v)))] as const),
);

function entryDer(entry: CrlEntry, seen: Set<string>): Buffer {
  if (!SERIAL_HEX.test(entry.serialHex)) throw new FleetkeyError('CRL_PARAMS_INVALID', { detail: 'serialHex must be 1..20 octets of hex' });
  const serial = Buffer.from(entry.serialHex, 'hex');
  const key = serial.toString('hex').replace(/^(00)+(?=.)/, '');
  if (seen.has(key)) throw new FleetkeyError('CRL_PARAMS_INVALID', { detail: 'duplicate serial in CRL' });
  seen.add(key);
  if (!Number.isFinite(entry.revokedAt.getTime())) throw new FleetkeyError('CRL_PARAMS_INVALID', { detail: 'bad revokedAt' });
  const parts = [unsignedInteger(serial), x509Time(wholeSeconds(entry.revokedAt))];
  if (entry.reason !== undefined && entry.reason !== 'unspecified') {
    const value = CRL_REASONS[entry.reason];
    if (value === undefined) throw new FleetkeyError('CRL_PARAMS_INVALID', { detail: 'unknown reason' });
    // removeFromCRL belongs to delta CRLs only (RFC 5280 §5.3.1); this builds full CRLs.
    if (entry.reason === 'removeFromCRL') throw new FleetkeyError('CRL_PARAMS_INVALID', { detail: 'removeFromCRL in a full CRL' });
    parts.push(REASON_EXTENSIONS.get(value)!);
  }
  // RFC 5280 §5.3.1: "unspecified" SHOULD be expressed by leaving reasonCode out.
  return seq(...parts);
}

/**
 * Builds and signs a full X.509 v2 CRL (RFC 5280 §5) with the cRLNumber and
 * authorityKeyIdentifier extensions and per-entry reasonCode. Written as DER directly: the
 * generic ASN.1 path takes seconds for 100,000 entries, this takes a fraction of one.
 *
 * @throws FleetkeyError CRL_PARAMS_INVALID | CERT_ISSUER_INVALID | CERT_SIGNING_FAILED
 */
export async function buildCrl(options: BuildCrlOptions): Promise<Buffer> {
  const issuer = readIssuer(options.issuerCertificate, options.signer);
  const thisUpdate = wholeSeconds(options.thisUpdate);
  const nextUpdate = wholeSeconds(options.nextUpdate);
  if (!Number.isFinite(thisUpdate.getTime()) || !(nextUpdate.getTime() > thisUpdate.getTime())) {
    throw new FleetkeyError('CRL_PARAMS_INVALID', { detail: 'nextUpdate must be after thisUpdate' });
  }
  if (options.crlNumber < 0n || options.crlNumber > MAX_CRL_NUMBER) throw new FleetkeyError('CRL_PARAMS_INVALID', { detail: 'crlNumber out of range' });

  const seen = new Set<string>();
  const entries = options.entries.map((e) => entryDer(e, seen));
  const algorithm = signatureAlgorithmId(options.signer.algorithm);
  const fields: Buffer[] = [
    Buffer.from([0x02, 0x01, 0x01]), // version v2: required when extensions are present (RFC 5280 §5.1.2.1)
    algorithm,
    issuer.subjectDer,
    x509Time(thisUpdate),
    x509Time(nextUpdate), // RFC 5280 §5.1.2.5: conforming CAs MUST include nextUpdate
  ];
  if (entries.length > 0) {
    // An empty revokedCertificates list MUST be absent rather than empty (RFC 5280 §5.1.2.6).
    fields.push(seq(Buffer.concat(entries))); // one concat: spreading 100,000 buffers overflows the stack
  }
  fields.push(
    tlv(
      0xa0,
      seq(
        extension(OID.authorityKeyIdentifier, false, seq(tlv(0x80, issuer.keyId))),
        extension(OID.cRLNumber, false, unsignedInteger(bigintMagnitude(options.crlNumber))),
      ),
    ),
  );
  const tbs = seq(...fields);
  let signature: Buffer;
  try {
    signature = await options.signer.sign(tbs);
  } catch (e) {
    throw new FleetkeyError('CERT_SIGNING_FAILED', { detail: 'signer refused the TBSCertList', cause: e });
  }
  return seq(tbs, algorithm, bitString(signature));
}

