/** The RFC 5280 policy extensions as @peculiar/x509 extensions, built with packages/crypto/src/pki/der.ts. */
import { oid, seq, smallInteger, tlv } from '../../src/pki/der.js';
import { rawExtension } from './x509-fixtures.js';

export const ANY = '2.5.29.32.0';
export const P1 = '1.3.6.1.4.1.55738.1.1';
export const P2 = '1.3.6.1.4.1.55738.1.2';
export const P3 = '1.3.6.1.4.1.55738.1.3';
export const CPS = '1.3.6.1.5.5.7.2.1';
export const UNOTICE = '1.3.6.1.5.5.7.2.2';

export type Policy = string | { id: string; qualifiers: Buffer[] };
/** certificatePolicies (§4.2.1.4). */
export const policies = (critical: boolean, ...list: Policy[]) =>
  rawExtension('2.5.29.32', critical, seq(...list.map((p) => (typeof p === 'string' ? seq(oid(p)) : seq(oid(p.id), seq(...p.qualifiers))))));
/** SkipCerts as the contents of an IMPLICIT [n] INTEGER. */
const skip = (n: number, value: number) => tlv(0x80 | n, smallInteger(value).subarray(2));
/** policyConstraints (§4.2.1.11). */
export const constraints = (critical: boolean, c: { require?: number; inhibitMapping?: number }) =>
  rawExtension('2.5.29.36', critical, seq(...(c.require === undefined ? [] : [skip(0, c.require)]), ...(c.inhibitMapping === undefined ? [] : [skip(1, c.inhibitMapping)])));
/** policyMappings (§4.2.1.5). */
export const mappings = (critical: boolean, ...pairs: [string, string][]) => rawExtension('2.5.29.33', critical, seq(...pairs.map(([a, b]) => seq(oid(a), oid(b)))));
/** inhibitAnyPolicy (§4.2.1.14). */
export const inhibitAny = (critical: boolean, n: number) => rawExtension('2.5.29.54', critical, smallInteger(n));
