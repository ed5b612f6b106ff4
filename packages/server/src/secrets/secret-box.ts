import { aes256GcmDecrypt, aes256GcmEncrypt, zero } from '@fleetkey/crypto';

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
    return `v1.${aes256GcmEncrypt(this.#key, plaintext, Buffer.from(aad, 'utf8')).toString('base64url')}`;
  }

  open(sealed: string, aad: string): Buffer {
    if (!sealed.startsWith('v1.')) throw new Error('unknown sealed format');
    return aes256GcmDecrypt(this.#key, Buffer.from(sealed.slice(3), 'base64url'), Buffer.from(aad, 'utf8'));
  }

  destroy(): void {
    zero(this.#key);
  }
}
