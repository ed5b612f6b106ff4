import { createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FleetkeyError, isFleetkeyError } from '@fleetkey/protocol';
import { readProtectedKeyFile, secretBuffer, SoftwareSigner, writeProtectedKeyFile, zero, type KeyProtector, type SignatureAlgorithm } from '@fleetkey/crypto';
import { checkSecureDir, ensureSecureDir, syncDir } from '../internal/secure-dir.js';
import { BaseKeystore, checkCurve, checkKeyLabel, type KeyCurve, type KeyHandle } from './keystore.js';

const generateKeyPairAsync = promisify(generateKeyPair);

export interface FileKeystoreOptions {
  /** Directory holding one sealed file per key; created 0700, refused when group/other can reach it. */
  dir: string;
  /**
   * What seals the keys: a passphrase (scrypt, N ≥ 2^15) or a 32-byte machine-bound secret
   * (e.g. unsealed from a TPM). Secret bytes are copied and zeroed on {@link FileKeystore.close}.
   */
  protector: KeyProtector;
}

/** The envelope label binds each file to its key label: a file renamed to another label fails to open. */
const envelopeLabel = (label: string): string => `device-key/${label}`;
const fileName = (label: string): string => `${label}.key`;

/** A copy off the V8 heap (a small Buffer.from copy is an on-heap array the GC may move, leaving a copy behind). */
function copySecret(b: Uint8Array): Buffer {
  const c = secretBuffer(b.length);
  c.set(b);
  return c;
}

function copyProtector(p: KeyProtector): KeyProtector {
  if (p.kind === 'machine') return { kind: 'machine', secret: copySecret(p.secret) };
  if (p.kind === 'master') return { kind: 'master', key: copySecret(p.key) };
  const copy: KeyProtector = { kind: 'passphrase', passphrase: typeof p.passphrase === 'string' ? p.passphrase : copySecret(p.passphrase) };
  if (p.scrypt !== undefined) copy.scrypt = { ...p.scrypt };
  return copy;
}

function zeroProtector(p: KeyProtector): void {
  if (p.kind === 'machine') zero(p.secret);
  else if (p.kind === 'master') zero(p.key);
  else if (typeof p.passphrase !== 'string') zero(p.passphrase);
  // A string passphrase is immutable in JS and cannot be wiped; prefer a Uint8Array.
}

function curveOf(key: KeyObject): KeyCurve {
  const c = key.asymmetricKeyDetails?.namedCurve;
  if (c === 'prime256v1') return 'P-256';
  if (c === 'secp384r1') return 'P-384';
  throw new FleetkeyError('KEY_FILE_UNSUPPORTED', { detail: `curve ${String(c)}` });
}

/** A software key decrypted into a KeyObject at load; signing goes through the crypto SoftwareSigner. */
class FileKeyHandle implements KeyHandle {
  readonly storage = 'file' as const;
  readonly label: string;
  readonly curve: KeyCurve;
  readonly algorithm: SignatureAlgorithm;
  readonly publicKey: KeyObject;
  readonly spkiDer: Buffer;
  readonly #signer: SoftwareSigner;
  #key: KeyObject | undefined;

  constructor(label: string, privateKey: KeyObject) {
    this.label = label;
    this.curve = curveOf(privateKey);
    this.#signer = new SoftwareSigner(privateKey);
    this.#key = privateKey;
    this.algorithm = this.#signer.algorithm;
    this.publicKey = createPublicKey(privateKey);
    this.spkiDer = this.publicKey.export({ type: 'spki', format: 'der' });
  }

  sign(data: Uint8Array): Promise<Buffer> {
    return this.#signer.sign(data);
  }

  tlsKey(): KeyObject | undefined {
    return this.#key;
  }

  async close(): Promise<void> {
    this.#key = undefined;
    await this.#signer.close();
  }
}

/**
 * Device keys as files: one AES-256-GCM envelope of the PKCS#8 key per label (the crypto
 * package's key-file format: per-file KDF salt, label bound into the AAD, mode 0600, atomic
 * create that never clobbers an existing key). Plaintext DER is zeroed as soon as it has been
 * turned into a KeyObject.
 *
 * @example
 *   const ks = await FileKeystore.open({ dir: '/var/lib/fleetkey/keys', protector: { kind: 'machine', secret } });
 *   const key = (await ks.getKey('operational')) ?? (await ks.generateKey('operational', 'P-256'));
 */
export class FileKeystore extends BaseKeystore {
  readonly kind = 'file' as const;
  readonly dir: string;
  #protector: KeyProtector | undefined;
  readonly #handles = new Map<string, FileKeyHandle>();

  private constructor(dir: string, protector: KeyProtector) {
    super();
    this.dir = dir;
    this.#protector = protector;
  }

  /**
   * Creates the directory (0700) when missing and checks its permissions.
   * @throws FleetkeyError KEY_FILE_PERMISSIONS
   */
  static async open(options: FileKeystoreOptions): Promise<FileKeystore> {
    await ensureSecureDir(options.dir);
    return new FileKeystore(options.dir, copyProtector(options.protector));
  }

  #protectorOrThrow(): KeyProtector {
    if (this.#protector === undefined) throw new FleetkeyError('INTERNAL', { detail: 'file keystore is closed' });
    return this.#protector;
  }

  /** @throws FleetkeyError KEY_FILE_EXISTS | KEY_FILE_PERMISSIONS */
  override async generateKey(label: string, curve: KeyCurve): Promise<KeyHandle> {
    checkKeyLabel(label);
    checkCurve(curve);
    const protector = this.#protectorOrThrow();
    await checkSecureDir(this.dir);
    // The generated KeyObject is the handle's key: turning the DER back into a key would go
    // through OpenSSL 3.0's DER decoder, which frees its copy of the PKCS#8 without wiping it
    // (docs/SECURITY.md, "Zeroization"); exporting leaves none (both measured).
    const { privateKey } = await generateKeyPairAsync('ec', { namedCurve: curve });
    const der = privateKey.export({ type: 'pkcs8', format: 'der' });
    try {
      // Written before the handle exists: a key the device uses is always one it can reload.
      await writeProtectedKeyFile(join(this.dir, fileName(label)), der, protector, envelopeLabel(label));
      const handle = new FileKeyHandle(label, privateKey);
      this.#handles.set(label, handle);
      return handle;
    } finally {
      zero(der);
    }
  }

  /**
   * @throws FleetkeyError KEY_FILE_CORRUPT (wrong passphrase/secret or tampered) |
   *   KEY_FILE_PERMISSIONS | KEY_FILE_WRONG_PURPOSE | KEY_FILE_UNSUPPORTED
   */
  override async getKey(label: string): Promise<KeyHandle | undefined> {
    checkKeyLabel(label);
    const protector = this.#protectorOrThrow();
    const cached = this.#handles.get(label);
    if (cached !== undefined) return cached;
    await checkSecureDir(this.dir);
    let key: KeyObject;
    try {
      key = await readProtectedKeyFile(join(this.dir, fileName(label)), protector, envelopeLabel(label));
    } catch (e) {
      if (isFleetkeyError(e) && e.code === 'KEY_FILE_NOT_FOUND') return undefined;
      throw e;
    }
    const handle = new FileKeyHandle(label, key);
    this.#handles.set(label, handle);
    return handle;
  }

  override async deleteKey(label: string): Promise<boolean> {
    checkKeyLabel(label);
    this.#protectorOrThrow();
    const handle = this.#handles.get(label);
    this.#handles.delete(label);
    await handle?.close();
    try {
      // The file holds only ciphertext; overwriting it in place would not reach the flash
      // cells a log-structured or journalled filesystem already moved it from.
      await unlink(join(this.dir, fileName(label)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
    await syncDir(this.dir); // the removal survives a crash
    return true;
  }

  override async close(): Promise<void> {
    for (const h of this.#handles.values()) await h.close();
    this.#handles.clear();
    if (this.#protector !== undefined) zeroProtector(this.#protector);
    this.#protector = undefined;
  }
}
