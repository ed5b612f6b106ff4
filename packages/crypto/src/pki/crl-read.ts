import { verify, type X509Certificate } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import { DerError, children, decodeOid, readExactly, readTlv, type DerNode } from './der.js';
import { readIssuer } from './issuer.js';
import { OID } from './oids.js';
import { decodeTime } from '../x509/validate/der.js';

export interface VerifiedCrl {
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly crlNumber: bigint;
  readonly entries: number;
}

const HASH: Record<string, string> = { [OID.ecdsaWithSha256]: 'sha256', [OID.ecdsaWithSha384]: 'sha384', [OID.ecdsaWithSha512]: 'sha512' };

const invalid = (detail: string, cause?: unknown): never => {
  throw new FleetkeyError('CRL_PARAMS_INVALID', { detail, ...(cause === undefined ? {} : { cause }) });
};

/**
 * Reads a CRL someone else signed (the root's, signed offline by the operator) and checks it is
 * one we can serve for `issuer`: v2, ECDSA, issuer name equal to the issuer's subject (RFC 5280
 * §5.1.2.3), signature by the issuer's key, nextUpdate present (§5.1.2.5) and a cRLNumber
 * (§5.2.3). Freshness and monotonic numbers are the caller's policy.
 *
 * @throws FleetkeyError CRL_PARAMS_INVALID
 */
export function readVerifiedCrl(der: Buffer, issuerCertificate: X509Certificate | Buffer | string): VerifiedCrl {
  const issuer = readIssuer(issuerCertificate, undefined);
  let parts: DerNode[];
  let fields: DerNode[];
  try {
    parts = children(readExactly(der, 0x30));
    if (parts.length !== 3) throw new DerError('CertificateList needs three parts');
    fields = children(parts[0]!);
  } catch (e) {
    return invalid('not a DER CertificateList', e);
  }
  const [version, alg, name, thisUpdate, nextUpdate, ...rest] = fields;
  if (version?.tag !== 0x02 || !version.value.equals(Buffer.from([1]))) return invalid('not a v2 CRL');
  const algOid = decodeOid(children(alg!)[0]?.value ?? Buffer.alloc(0));
  const hash = HASH[algOid];
  if (hash === undefined || !parts[1]!.raw.equals(alg!.raw)) return invalid('signature algorithm is not ECDSA, or differs inside and outside');
  if (!name?.raw.equals(issuer.subjectDer)) return invalid('issuer name is not the issuer certificate subject');
  if (nextUpdate === undefined || (nextUpdate.tag !== 0x17 && nextUpdate.tag !== 0x18)) return invalid('no nextUpdate');
  const sig = parts[2]!;
  if (sig.tag !== 0x03 || sig.value[0] !== 0) return invalid('bad signature BIT STRING');
  if (!verify(hash, parts[0]!.raw, issuer.certificate.publicKey, sig.value.subarray(1))) return invalid('signature does not verify with the issuer key');
  let crlNumber: bigint | undefined;
  let entries = 0;
  try {
    for (const f of rest) {
      if (f.tag === 0x30) entries = children(f).length;
      if (f.tag !== 0xa0) continue;
      for (const ext of children(readTlv(f.value))) {
        const [id, ...value] = children(ext);
        if (decodeOid(id!.value) === OID.cRLNumber) crlNumber = BigInt(`0x${readExactly(value[value.length - 1]!.value, 0x02).value.toString('hex')}`);
      }
    }
    if (crlNumber === undefined) return invalid('no cRLNumber');
    return { thisUpdate: decodeTime(thisUpdate!), nextUpdate: decodeTime(nextUpdate), crlNumber, entries };
  } catch (e) {
    if (e instanceof FleetkeyError) throw e;
    return invalid('malformed CRL fields', e);
  }
}
