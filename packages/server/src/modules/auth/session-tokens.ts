import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { readEncryptedKeyFile, writeEncryptedKeyFile } from '@fleetkey/crypto';
import { jwtVerify, SignJWT } from 'jose';

export const SESSION_AUDIENCE = 'fleetkey-gateway';
const MAX_LIFETIME_S = 3600;
const KEY_FILE = 'session-token.key';
const KEY_LABEL = 'fleetkey-session-token';

export interface SessionClaims {
  readonly deviceId: string;
  /** The certificate the device authenticated with when it got the token (revoking it voids the token). */
  readonly serial: string | null;
}

/**
 * Short-lived session tokens (ES256 JWT, audience = the gateway, at most one hour) for devices
 * whose TLS stack cannot present a certificate (a key in a TPM, behind a TLS terminator). They
 * are issued only to a device that just authenticated on the device plane, carry the serial of
 * the certificate it used, and are checked against the revocation view again at every CONNECT.
 */
export class SessionTokens {
  private constructor(
    private readonly key: KeyObject,
    private readonly publicKey: KeyObject,
    private readonly issuer: string,
  ) {}

  static async open(dir: string, masterKey: Buffer, issuer: string): Promise<SessionTokens> {
    const file = join(dir, KEY_FILE);
    let key: KeyObject;
    try {
      key = await readEncryptedKeyFile(file, masterKey, KEY_LABEL);
    } catch (e) {
      if ((e as { code?: string }).code !== 'KEY_FILE_NOT_FOUND') throw e;
      key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
      const der = key.export({ type: 'pkcs8', format: 'der' });
      try {
        await writeEncryptedKeyFile(file, der, masterKey, KEY_LABEL);
      } finally {
        der.fill(0);
      }
    }
    const { createPublicKey } = await import('node:crypto');
    return new SessionTokens(key, createPublicKey(key), issuer);
  }

  async issue(claims: SessionClaims, lifetimeS = MAX_LIFETIME_S): Promise<{ token: string; expiresAt: Date }> {
    const life = Math.min(Math.max(60, lifetimeS), MAX_LIFETIME_S);
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ ...(claims.serial === null ? {} : { x5s: claims.serial }) })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
      .setSubject(claims.deviceId)
      .setAudience(SESSION_AUDIENCE)
      .setIssuer(this.issuer)
      .setIssuedAt(now)
      .setExpirationTime(now + life)
      .setJti(randomUUID())
      .sign(this.key);
    return { token, expiresAt: new Date((now + life) * 1000) };
  }

  /** Verifies signature (ES256 only), audience, issuer, expiry and lifetime; null when any fails. */
  async verify(token: string): Promise<SessionClaims | null> {
    try {
      const { payload } = await jwtVerify(token, this.publicKey, {
        algorithms: ['ES256'],
        audience: SESSION_AUDIENCE,
        issuer: this.issuer,
        maxTokenAge: `${MAX_LIFETIME_S}s`,
        clockTolerance: 30,
        requiredClaims: ['sub', 'exp', 'iat', 'jti'],
      });
      if (typeof payload.sub !== 'string') return null;
      return { deviceId: payload.sub, serial: typeof payload['x5s'] === 'string' ? payload['x5s'] : null };
    } catch {
      return null;
    }
  }
}

/** A JWS compact serialization, as opposed to a SAS token (`sr=…&se=…&sig=…`). */
export const looksLikeJwt = (s: string): boolean => /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(s);
