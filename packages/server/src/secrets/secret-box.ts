import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * Seals small server-side secrets (webhook signing secrets, later group keys) under the master
 * key with AES-256-GCM. The AAD names what the secret is for, so a sealed value copied into
 * another row or column does not open.
 */
export class SecretBox {
  readonly #key: Buffer;

  constructor(masterKey: Buffer) {
    if (masterKey.length !== 32) throw new TypeError('master key must be 32 bytes');
    this.#key = Buffer.from(masterKey);
  }

  seal(plaintext: Buffer, aad: string): string {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce);
    cipher.setAAD(Buffer.from(aad, 'utf8'));
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return `v1.${Buffer.concat([nonce, ct, cipher.getAuthTag()]).toString('base64url')}`;
  }

  open(sealed: string, aad: string): Buffer {
    if (!sealed.startsWith('v1.')) throw new Error('unknown sealed format');
    const raw = Buffer.from(sealed.slice(3), 'base64url');
    if (raw.length < 12 + 16) throw new Error('sealed value too short');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]);
  }

  destroy(): void {
    this.#key.fill(0);
  }
}
