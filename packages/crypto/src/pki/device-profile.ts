import { randomFillSync } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import { keyIdentifier } from './hash.js';

/**
 * `operational` is the LDevID the server issues at provisioning and renewal; `idevid` is the
 * birth certificate the manufacturing CA issues (IEEE 802.1AR). Both share one profile; the
 * IDevID subject adds X.520 serialNumber = device id, the attribute IEEE 802.1AR §8.6 asks
 * DevID subjects to carry, so a manufacturing certificate is recognisable by its subject alone.
 */
export type DeviceCertificateKind = 'operational' | 'idevid';

export interface DeviceCertificateRequest {
  /** The device's UUIDv4, lower case: becomes subject CN and SAN `urn:uuid:<id>`. */
  readonly deviceId: string;
  /** SubjectPublicKeyInfo DER from a CSR that parseAndVerifyCsr accepted. */
  readonly spkiDer: Buffer;
  /** Validity chosen by the caller's policy; notAfter may not pass the issuer's notAfter. */
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The enrollment / attestation method that authorised this issuance, e.g. `x509:<enrollmentId>`, `operator`. */
  readonly method: string;
  readonly kind: DeviceCertificateKind;
  /** notBefore is moved back by this much for devices with slow clocks (0..5 min; default 0). */
  readonly clockSkewMs?: number;
}

export interface IssuedCertificate {
  readonly der: Buffer;
  /** Serial number as lower-case hex of its DER INTEGER content without a sign octet. */
  readonly serialHex: string;
  /** SHA-256 of the DER, lower-case hex. */
  readonly fingerprintSha256: string;
}

export const MAX_CLOCK_SKEW_MS = 5 * 60_000;
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** Method names are machine-readable tags, ASCII only so they read the same in every tool. */
const METHOD = /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$/;

/**
 * notAfter 99991231235959Z: "no well-defined expiration date" (RFC 5280 §4.1.2.5), what IEEE
 * 802.1AR recommends for an IDevID, which must outlive any storage time of its device. Written as
 * GeneralizedTime (year ≥ 2050, §4.1.2.5.2).
 */
export const NO_WELL_DEFINED_EXPIRATION = new Date(Date.UTC(9999, 11, 31, 23, 59, 59));

/** X.509 times carry whole seconds (RFC 5280 §4.1.2.5.1-2): cut the rest so both paths agree. */
export const wholeSeconds = (d: Date): Date => new Date(Math.floor(d.getTime() / 1000) * 1000);

/**
 * Validates a device request against the profile and returns what both issuance paths derive
 * from it: the effective validity and the subject key identifier (RFC 5280 §4.2.1.2).
 */
export function checkDeviceRequest(req: DeviceCertificateRequest, issuerNotAfter: Date): { notBefore: Date; notAfter: Date; ski: Buffer } {
  if (!UUID_V4.test(req.deviceId)) throw new FleetkeyError('CERT_PROFILE_INVALID', { detail: 'deviceId is not a lower-case UUIDv4' });
  if (!METHOD.test(req.method)) throw new FleetkeyError('CERT_PROFILE_INVALID', { detail: 'method tag has a bad shape' });
  if (req.kind !== 'operational' && req.kind !== 'idevid') throw new FleetkeyError('CERT_PROFILE_INVALID', { detail: 'unknown kind' });
  const skew = req.clockSkewMs ?? 0;
  if (!Number.isInteger(skew) || skew < 0 || skew > MAX_CLOCK_SKEW_MS) {
    throw new FleetkeyError('CERT_VALIDITY_INVALID', { detail: 'clock skew must be 0..300000 ms' });
  }
  const nb = req.notBefore.getTime();
  const na = req.notAfter.getTime();
  if (!Number.isFinite(nb) || !Number.isFinite(na) || na <= nb) {
    throw new FleetkeyError('CERT_VALIDITY_INVALID', { detail: 'notAfter must be after notBefore' });
  }
  // A certificate outliving its issuer is unusable by strict relying parties and hides expiry
  // planning bugs. The one exception is an IDevID without a well-defined expiration: it claims no
  // end date of its own, so its chain's validity bounds it (RFC 5280 §6.1.3 (a)(2) checks each).
  const unbounded = req.kind === 'idevid' && na === NO_WELL_DEFINED_EXPIRATION.getTime();
  if (na > issuerNotAfter.getTime() && !unbounded) throw new FleetkeyError('CERT_VALIDITY_INVALID', { detail: 'notAfter beyond issuer notAfter' });
  let ski: Buffer;
  try {
    ski = keyIdentifier(req.spkiDer);
  } catch (e) {
    throw new FleetkeyError('CERT_PROFILE_INVALID', { detail: 'spkiDer is not a SubjectPublicKeyInfo', cause: e });
  }
  return { notBefore: wholeSeconds(new Date(nb - skew)), notAfter: wholeSeconds(req.notAfter), ski };
}

const POOL_SIZE = 16 * 1024;
let pool = Buffer.alloc(0);
let poolAt = POOL_SIZE;

/**
 * A certificate serial: 16 octets from the CSPRNG with the top bit cleared and the next set,
 * so it is positive, always 16 octets long (≤ 20, RFC 5280 §4.1.2.2) and carries 126 random
 * bits (CA/B Forum asks ≥ 64). Random bytes come from a pooled CSPRNG buffer: one syscall per
 * thousand serials.
 */
export function randomSerial(): Buffer {
  if (poolAt + 16 > POOL_SIZE) {
    pool = randomFillSync(Buffer.allocUnsafe(POOL_SIZE));
    poolAt = 0;
  }
  const serial = Buffer.from(pool.subarray(poolAt, poolAt + 16));
  pool.fill(0, poolAt, poolAt + 16);
  poolAt += 16;
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  return serial;
}
