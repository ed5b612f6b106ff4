import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EK_CERT_NV_INDEX, ekCertificateFromNv, writeSecretFile, zero } from '@fleetkey/crypto';
import { FleetkeyError, TpmChallenge } from '@fleetkey/protocol';
import { matches } from '../schema-check.js';
import { credentialFile, openTpmTools, type TpmTools } from '../tpm-tools.js';
import { AttestationMethod, type MethodContext, type PreparedAttestation } from './method.js';

const b64 = (s: string): Buffer => Buffer.from(s, 'base64');

/** Where provisioning keeps the AK it bound (TPM2B_PUBLIC, TPM2B_PRIVATE as tpm2-tools writes them). */
export const TPM_AK_FILES = { public: 'tpm-ak.pub', private: 'tpm-ak.priv' } as const;

/**
 * TPM 2.0 attestation by credential activation (TPM 2.0 Part 1 §24): the device sends its
 * endorsement key (and the EK certificate from NV when there is one) and an attestation key;
 * the server encrypts a secret to the EK, bound to the AK's name; only this TPM, holding both,
 * can recover it with TPM2_ActivateCredential (Part 3 §12.5).
 *
 * The RSA-2048 EK from the TCG template (EK Credential Profile §B.3.3) is used because its
 * certificate lives at the well-known NV index 0x01c00002.
 */
export class TpmAttestation extends AttestationMethod {
  readonly type = 'tpm' as const;
  // The operational key was generated (through tpm2-pkcs11) before this runs; the keystore is
  // closed so its objects do not fill a TPM that has no resource manager.
  override readonly releasesKeystore = true;

  override async prepare(ctx: MethodContext): Promise<PreparedAttestation> {
    const tcti = ctx.bundle.device.tpmTcti;
    if (tcti === null) throw new FleetkeyError('CONFIG_INVALID', { detail: 'device bundle: tpm attestation needs tpmTcti' });
    const tools = await openTpmTools(tcti);
    try {
      const evidence = await collectEvidence(tools);
      const deviceId = ctx.bundle.device.deviceId;
      return {
        tls: {},
        async attempt(client, csr) {
          const raw = await client.post('/device/v1/provision/tpm/start', {
            deviceId,
            ekPublic: evidence.ekPublic.toString('base64'),
            ...(evidence.ekCertificate === undefined ? {} : { ekCertificate: evidence.ekCertificate.toString('base64') }),
            akPublic: evidence.akPublic.toString('base64'),
          });
          if (!matches(TpmChallenge, raw)) throw new FleetkeyError('INTERNAL', { detail: 'device plane answered a malformed TPM challenge' });
          const secret = await activate(tools, credentialFile(b64(raw.credentialBlob), b64(raw.encryptedSecret)));
          try {
            const result = await client.post('/device/v1/provision/tpm/finish', { challengeId: raw.challengeId, secret: secret.toString('base64'), csr });
            // Issue 13: the AK the server just bound signs this device's quotes. Its private part
            // is a blob wrapped by the EK (TPM 2.0 Part 1 §23.3): loadable only in this TPM.
            await writeSecretFile(join(ctx.bundle.dir, TPM_AK_FILES.public), await readFile(tools.path('ak.pub')), { overwrite: true });
            await writeSecretFile(join(ctx.bundle.dir, TPM_AK_FILES.private), await readFile(tools.path('ak.priv')), { overwrite: true });
            return result;
          } finally {
            zero(secret);
          }
        },
        dispose: () => void tools.close(),
      };
    } catch (e) {
      await tools.close();
      throw e;
    }
  }
}

interface TpmEvidence {
  ekPublic: Buffer;
  ekCertificate: Buffer | undefined;
  akPublic: Buffer;
}

async function collectEvidence(tools: TpmTools): Promise<TpmEvidence> {
  // The EK is re-created from the TCG template: same seed, same key, every time.
  await tools.run('tpm2_createek', ['-c', 'ek.ctx', '-G', 'rsa', '-u', 'ek.pub']);
  let ekCertificate: Buffer | undefined;
  try {
    await tools.run('tpm2_nvread', [`0x${EK_CERT_NV_INDEX.rsa2048.toString(16)}`, '-C', 'o', '-o', 'ek-cert.der']);
    ekCertificate = ekCertificateFromNv(await readFile(tools.path('ek-cert.der')));
  } catch {
    // No EK certificate provisioned: the enrollment must then pin the EK itself (ekPublicSha256).
    ekCertificate = undefined;
  }
  // Restricted ECDSA P-256 signing key under the EK, as the server's checkAkAttributes expects.
  await tools.run('tpm2_createak', ['-C', 'ek.ctx', '-c', 'ak.ctx', '-G', 'ecc', '-g', 'sha256', '-s', 'ecdsa', '-u', 'ak.pub', '-r', 'ak.priv', '-n', 'ak.name', '-f', 'tss']);
  return { ekPublic: await readFile(tools.path('ek.pub')), ekCertificate, akPublic: await readFile(tools.path('ak.pub')) };
}

/**
 * TPM2_ActivateCredential with the AK (object) and the EK (key). The TCG EK template clears
 * userWithAuth, so the EK is authorised by its policy, PolicySecret(TPM_RH_ENDORSEMENT).
 */
async function activate(tools: TpmTools, credential: Buffer): Promise<Buffer> {
  await writeFile(tools.path('cred.bin'), credential, { mode: 0o600 });
  await tools.run('tpm2_startauthsession', ['--policy-session', '-S', 'session.ctx']);
  try {
    await tools.run('tpm2_policysecret', ['-S', 'session.ctx', '-c', 'e']);
    await tools.run('tpm2_activatecredential', ['-c', 'ak.ctx', '-C', 'ek.ctx', '-i', 'cred.bin', '-o', 'secret.bin', '-P', 'session:session.ctx']);
  } finally {
    // A policy session survives a failed command; flush it or the TPM runs out of sessions.
    await tools.run('tpm2_flushcontext', ['session.ctx']).catch(() => undefined);
  }
  const secret = await readFile(tools.path('secret.bin'));
  await writeFile(tools.path('secret.bin'), Buffer.alloc(secret.length)); // overwrite the scratch copy
  return secret;
}
