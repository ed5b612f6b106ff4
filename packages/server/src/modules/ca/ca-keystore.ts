import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  generateEcKeyPair,
  openPkcs11Token,
  Pkcs11Signer,
  readEncryptedKeyFile,
  SoftwareSigner,
  writeEncryptedKeyFile,
  type Signer,
} from '@fleetkey/crypto';
import type { FleetkeyConfig } from '../../config/config-schema.js';

export type Curve = 'P-256' | 'P-384';
const NODE_CURVE: Record<Curve, string> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1' };

/**
 * Where CA private keys live. One interface, two homes: files encrypted under the master key
 * (AES-256-GCM, 0600), or a PKCS#11 token where the key is generated and never leaves. The
 * `keyRef` stored with the authority names the key within its keystore.
 */
export interface CaKeystore {
  readonly kind: 'file' | 'pkcs11';
  create(role: string, curve: Curve): Promise<{ signer: Signer; keyRef: string }>;
  open(keyRef: string): Promise<Signer>;
}

export class FileCaKeystore implements CaKeystore {
  readonly kind = 'file' as const;
  constructor(
    private readonly dir: string,
    private readonly masterKey: Buffer,
  ) {}

  async create(role: string, curve: Curve): Promise<{ signer: Signer; keyRef: string }> {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: NODE_CURVE[curve] });
    const keyRef = `${role}-${randomUUID()}.key`;
    const der = privateKey.export({ type: 'pkcs8', format: 'der' });
    try {
      // The label is bound into the AAD: a key file renamed to stand in for another fails to open.
      await writeEncryptedKeyFile(join(this.dir, keyRef), der, this.masterKey, `fleetkey-ca:${keyRef}`);
    } finally {
      der.fill(0);
    }
    return { signer: new SoftwareSigner(privateKey), keyRef };
  }

  async open(keyRef: string): Promise<Signer> {
    return new SoftwareSigner(await this.privateKey(keyRef));
  }

  /** The decrypted key, for the one operation that needs it outside a Signer: the root export. */
  async privateKey(keyRef: string): Promise<KeyObject> {
    return readEncryptedKeyFile(join(this.dir, keyRef), this.masterKey, `fleetkey-ca:${keyRef}`);
  }
}

export class Pkcs11CaKeystore implements CaKeystore {
  readonly kind = 'pkcs11' as const;
  constructor(private readonly options: { module: string; tokenLabel: string; pin: string }) {}

  async create(role: string, curve: Curve): Promise<{ signer: Signer; keyRef: string }> {
    const keyRef = `fleetkey-${role}-${randomUUID().slice(0, 8)}`;
    const session = openPkcs11Token(this.options);
    try {
      const key = await generateEcKeyPair(session, { label: keyRef, curve });
      return { signer: new Pkcs11Signer(session, key, { ownsSession: true, sessions: 2 }), keyRef };
    } catch (e) {
      session.close();
      throw e;
    }
  }

  async open(keyRef: string): Promise<Signer> {
    return Pkcs11Signer.open({ ...this.options, keyLabel: keyRef, sessions: 2 });
  }
}

export function caKeystoreFor(config: FleetkeyConfig, masterKey: Buffer): CaKeystore {
  const ks = config.ca.keystore;
  if (ks.type === 'file') return new FileCaKeystore(join(config.dataDir, 'ca'), masterKey);
  // createServer has refused a PIN file open to others (assertPrivateFile); the PIN is never logged.
  const pin = readFileSync(ks.pinFile, 'utf8').trim();
  return new Pkcs11CaKeystore({ module: ks.module, tokenLabel: ks.tokenLabel, pin });
}
