import { randomBytes, type KeyObject } from 'node:crypto';
import { FleetkeyError } from '@fleetkey/protocol';
import { ck, ckrName, type Handle, type Pkcs11Api } from './module.js';
import { CURVES, curveFromParams, ecPublicKeyFromPoint, unwrapEcPoint, type EcCurve } from './ec-public-key.js';
import type { Pkcs11Session } from './session.js';

/** An EC key pair on a token: handles valid for the session's lifetime, plus the cached public key. */
export interface Pkcs11EcKey {
  readonly label: string;
  readonly id: Buffer;
  readonly curve: EcCurve;
  readonly privateKey: Handle;
  readonly publicKey: KeyObject;
}

export interface GenerateEcKeyOptions {
  label: string;
  curve: EcCurve;
  /** CKA_ID linking the two halves (and, by convention, a certificate). Default: 16 random bytes. */
  id?: Buffer;
}

function failed(what: string, cause: unknown): FleetkeyError {
  return new FleetkeyError('PKCS11_OPERATION_FAILED', { detail: `${what}: ${ckrName(cause)}`, cause });
}

function findObjects(api: Pkcs11Api, session: Handle, template: Array<{ type: number; value: number | boolean | Buffer | string }>): Handle[] {
  try {
    api.C_FindObjectsInit(session, template);
    try {
      return api.C_FindObjects(session, 16);
    } finally {
      api.C_FindObjectsFinal(session);
    }
  } catch (cause) {
    throw failed('C_FindObjects', cause);
  }
}

function attribute(api: Pkcs11Api, session: Handle, object: Handle, type: number): Buffer {
  try {
    const [attr] = api.C_GetAttributeValue(session, object, [{ type }]);
    if (attr === undefined) throw new Error('attribute missing');
    return attr.value;
  } catch (cause) {
    throw failed(`C_GetAttributeValue(${type})`, cause);
  }
}

/** CK_ULONG attributes come back in native byte order and width (8 bytes on x86_64 Linux). */
function ulong(b: Buffer): number {
  if (b.length === 8) return Number(b.readBigUInt64LE(0));
  if (b.length === 4) return b.readUInt32LE(0);
  throw new FleetkeyError('PKCS11_KEY_UNSUPPORTED', { detail: `CK_ULONG of ${b.length} bytes` });
}

function privateKeysLabelled(session: Pkcs11Session, label: string): Handle[] {
  return findObjects(session.api, session.handle, [
    { type: ck.CKA_CLASS, value: ck.CKO_PRIVATE_KEY },
    { type: ck.CKA_LABEL, value: label },
  ]);
}

/**
 * Generates an EC key pair inside the token. The private half is a token object that can sign
 * and can never leave: CKA_SENSITIVE=true, CKA_EXTRACTABLE=false (PKCS#11 v2.40 §4.9: once set
 * these cannot be reverted), CKA_PRIVATE=true (invisible before login), no CKA_DERIVE/DECRYPT.
 * @throws FleetkeyError PKCS11_KEY_EXISTS | PKCS11_OPERATION_FAILED
 */
export async function generateEcKeyPair(session: Pkcs11Session, options: GenerateEcKeyOptions): Promise<Pkcs11EcKey> {
  const { label, curve } = options;
  if (privateKeysLabelled(session, label).length > 0) {
    // Labels are how the CA finds its key again; two keys under one label would be ambiguous.
    throw new FleetkeyError('PKCS11_KEY_EXISTS', { detail: `label ${label} on ${session.tokenLabel}` });
  }
  const id = options.id ?? randomBytes(16);
  const common = [
    { type: ck.CKA_TOKEN, value: true },
    { type: ck.CKA_KEY_TYPE, value: ck.CKK_EC },
    { type: ck.CKA_LABEL, value: label },
    { type: ck.CKA_ID, value: id },
  ];
  const publicTemplate = [
    ...common,
    { type: ck.CKA_CLASS, value: ck.CKO_PUBLIC_KEY },
    { type: ck.CKA_PRIVATE, value: false },
    { type: ck.CKA_VERIFY, value: true },
    { type: ck.CKA_EC_PARAMS, value: CURVES[curve].params },
  ];
  const privateTemplate = [
    ...common,
    { type: ck.CKA_CLASS, value: ck.CKO_PRIVATE_KEY },
    { type: ck.CKA_PRIVATE, value: true },
    { type: ck.CKA_SENSITIVE, value: true },
    { type: ck.CKA_EXTRACTABLE, value: false },
    { type: ck.CKA_SIGN, value: true },
    { type: ck.CKA_DERIVE, value: false },
  ];
  let pair: { privateKey: Handle; publicKey: Handle };
  try {
    pair = await session.api.C_GenerateKeyPairAsync(session.handle, { mechanism: ck.CKM_EC_KEY_PAIR_GEN }, publicTemplate, privateTemplate);
  } catch (cause) {
    throw failed('C_GenerateKeyPair', cause);
  }
  const point = unwrapEcPoint(attribute(session.api, session.handle, pair.publicKey, ck.CKA_EC_POINT), curve);
  return { label, id, curve, privateKey: pair.privateKey, publicKey: ecPublicKeyFromPoint(point, curve) };
}

/**
 * Finds the EC key pair labelled `label`: the private object by label, its public half by
 * CKA_ID (the label of a public object may differ). Returns undefined when absent.
 * @throws FleetkeyError PKCS11_KEY_UNSUPPORTED (ambiguous label, not EC, no public point)
 */
export function findKey(session: Pkcs11Session, label: string): Pkcs11EcKey | undefined {
  const api = session.api;
  const h = session.handle;
  const privs = privateKeysLabelled(session, label);
  if (privs.length === 0) return undefined;
  if (privs.length > 1) throw new FleetkeyError('PKCS11_KEY_UNSUPPORTED', { detail: `${privs.length} private keys labelled ${label}` });
  const privateKey = privs[0]!;
  if (ulong(attribute(api, h, privateKey, ck.CKA_KEY_TYPE)) !== ck.CKK_EC) {
    throw new FleetkeyError('PKCS11_KEY_UNSUPPORTED', { detail: `${label} is not an EC key` });
  }
  const id = attribute(api, h, privateKey, ck.CKA_ID);
  const curve = curveFromParams(attribute(api, h, privateKey, ck.CKA_EC_PARAMS));
  const pubs = findObjects(api, h, [
    { type: ck.CKA_CLASS, value: ck.CKO_PUBLIC_KEY },
    { type: ck.CKA_KEY_TYPE, value: ck.CKK_EC },
    { type: ck.CKA_ID, value: id },
  ]);
  // Some tokens (tpm2-pkcs11) also expose CKA_EC_POINT on the private object; use it when no
  // public object exists.
  const holder = pubs.length === 1 ? pubs[0]! : privateKey;
  let pointAttr: Buffer;
  try {
    pointAttr = attribute(api, h, holder, ck.CKA_EC_POINT);
  } catch (cause) {
    throw new FleetkeyError('PKCS11_KEY_UNSUPPORTED', { detail: `no public point for ${label}`, cause });
  }
  const publicKey = ecPublicKeyFromPoint(unwrapEcPoint(pointAttr, curve), curve);
  return { label, id, curve, privateKey, publicKey };
}
