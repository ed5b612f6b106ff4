import { readFile, writeFile } from 'node:fs/promises';
import { FleetkeyError, isFleetkeyError } from '@fleetkey/protocol';
import type { TpmTools } from '../provisioning/tpm-tools.js';
import { checkPcrs, pcrSelection, type SealedObject } from './sealed-file.js';

/** Largest secret a sealed data object holds (TPM 2.0 Part 2 §11.1.14: MAX_SYM_DATA = 128). */
export const MAX_SEALED_BYTES = 128;

// TPM_RC format-one error numbers (TPM 2.0 Part 2 §6.6.3): rc & 0x80 set, number in the low 6 bits.
const RC_FMT1 = 0x080;
const RC_POLICY_FAIL = 0x01d;
const RC_INTEGRITY = 0x01f;
// TPM_RC_PCR_CHANGED (RC_VER1 + 0x028): a PCR moved between PolicyPCR and Unseal.
const RC_PCR_CHANGED = 0x128;

const rcOf = (e: unknown): number | undefined => {
  const rc = isFleetkeyError(e) ? e.extra?.['tpmRc'] : undefined;
  return typeof rc === 'number' ? rc : undefined;
};
const fmt1 = (rc: number | undefined, n: number): boolean => rc !== undefined && (rc & RC_FMT1) !== 0 && (rc & 0x3f) === n;

function unavailable(e: unknown, what: string): FleetkeyError {
  if (isFleetkeyError(e) && e.code === 'CONFIG_INVALID') return e; // tpm2-tools not installed
  return new FleetkeyError('TPM_UNAVAILABLE', { detail: `${what}: ${isFleetkeyError(e) ? (e.detail ?? e.code) : String(e)}`, cause: e });
}

/**
 * The storage primary: an ECC P-256 restricted decryption key in the owner hierarchy, created
 * again on every use from the same template, so it is the same key (Part 1 §27.7 "Primary
 * objects are derived from the hierarchy's seed"). Nothing is persisted in the TPM's NV.
 * Assumes an empty owner authorisation, as on a device the platform provisioned without one.
 */
async function createParent(tools: TpmTools): Promise<void> {
  await tools.run('tpm2_createprimary', ['-C', 'o', '-g', 'sha256', '-G', 'ecc256:aes128cfb', '-c', 'parent.ctx']);
}

/**
 * Seals `secret` (≤ 128 bytes) to this TPM under PolicyPCR over `pcrs` in the SHA-256 bank at
 * their current values. The object is fixedTPM|fixedParent (never duplicated to another TPM),
 * userWithAuth clear (the policy is the only way in: Part 1 §19.7.2), noDA. The secret goes to
 * tpm2_create through its stdin, never through a file.
 * @throws FleetkeyError TPM_UNAVAILABLE | CONFIG_INVALID (tpm2-tools missing)
 */
export async function sealToTpm(tools: TpmTools, secret: Uint8Array, pcrs: readonly number[]): Promise<SealedObject> {
  checkPcrs(pcrs);
  if (secret.length === 0 || secret.length > MAX_SEALED_BYTES) throw new RangeError(`a sealed secret is 1..${MAX_SEALED_BYTES} bytes`);
  try {
    await createParent(tools);
    // A trial session computes the PolicyPCR digest over the PCRs' current values (Part 3 §23.7).
    await tools.run('tpm2_createpolicy', ['--policy-pcr', '-l', pcrSelection(pcrs), '-L', 'seal.policy']);
    await tools.runBinary(
      'tpm2_create',
      ['-C', 'parent.ctx', '-g', 'sha256', '-L', 'seal.policy', '-a', 'fixedtpm|fixedparent|noda', '-u', 'seal.pub', '-r', 'seal.priv', '-i-'],
      secret,
    );
    return { pcrs: [...pcrs], publicArea: await readFile(tools.path('seal.pub')), privateArea: await readFile(tools.path('seal.priv')) };
  } catch (e) {
    throw unavailable(e, 'sealing to the TPM');
  }
}

/**
 * Loads the sealed object under the primary and unseals it in a policy session that replays
 * PolicyPCR (Part 3 §23.7, §12.7 TPM2_Unseal). The caller zeroes the result.
 * @throws FleetkeyError TPM_SEAL_WRONG_TPM (the TPM refuses to load it: another TPM's, or altered) |
 *   TPM_SEAL_POLICY_FAILED (PCRs differ from the sealed state) | TPM_UNAVAILABLE
 */
export async function unsealFromTpm(tools: TpmTools, sealed: SealedObject): Promise<Buffer> {
  try {
    await createParent(tools);
  } catch (e) {
    throw unavailable(e, 'creating the storage primary');
  }
  await writeFile(tools.path('seal.pub'), sealed.publicArea, { mode: 0o600 });
  await writeFile(tools.path('seal.priv'), sealed.privateArea, { mode: 0o600 });
  try {
    await tools.run('tpm2_load', ['-C', 'parent.ctx', '-u', 'seal.pub', '-r', 'seal.priv', '-c', 'seal.ctx']);
  } catch (e) {
    // TPM2_Load checks the outer HMAC of TPM2B_PRIVATE with a key from the parent's seed
    // (Part 1 §23.3.2.3): another TPM's (or an edited) blob fails with TPM_RC_INTEGRITY or a
    // parameter error. Every format-one refusal of Load means "not a blob this TPM wrote".
    const rc = rcOf(e);
    if (rc !== undefined && (rc & RC_FMT1) !== 0) {
      throw new FleetkeyError('TPM_SEAL_WRONG_TPM', { detail: `TPM2_Load refused the sealed object (rc 0x${rc.toString(16)}${fmt1(rc, RC_INTEGRITY) ? ', integrity' : ''})`, cause: e });
    }
    throw unavailable(e, 'loading the sealed object');
  }
  for (let attempt = 0; ; attempt++) {
    await tools.run('tpm2_startauthsession', ['--policy-session', '-S', 'session.ctx']);
    try {
      await tools.run('tpm2_policypcr', ['-S', 'session.ctx', '-l', pcrSelection(sealed.pcrs)]);
      return await tools.runBinary('tpm2_unseal', ['-c', 'seal.ctx', '-p', 'session:session.ctx']);
    } catch (e) {
      const rc = rcOf(e);
      if (rc === RC_PCR_CHANGED && attempt === 0) continue; // extended between the two commands: replay once
      if (fmt1(rc, RC_POLICY_FAIL)) {
        throw new FleetkeyError('TPM_SEAL_POLICY_FAILED', { detail: `PolicyPCR over ${pcrSelection(sealed.pcrs)} does not match the sealed state`, cause: e });
      }
      throw unavailable(e, 'unsealing');
    } finally {
      // A policy session survives a failed command; flush it or the TPM runs out of sessions.
      await tools.run('tpm2_flushcontext', ['session.ctx']).catch(() => undefined);
    }
  }
}
