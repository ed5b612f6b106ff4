import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FleetkeyError } from '@fleetkey/protocol';
import { readSecretFile } from '@fleetkey/crypto';
import type { TpmTools } from '../provisioning/tpm-tools.js';
import { TPM_AK_FILES } from '../provisioning/methods/tpm.js';

/** One quote as the device sends it, plus tpm2-tools' own PCR file (kept for tpm2_checkquote). */
export interface TpmQuoteResult {
  /** TPMS_ATTEST as the TPM marshalled it (TPM 2.0 Part 2 §10.12.12). */
  readonly quote: Buffer;
  /** TPMT_SIGNATURE (Part 2 §11.3.4). */
  readonly signature: Buffer;
  /** SHA-256 PCR values by index, read right after the quote. */
  readonly pcrs: Record<string, string>;
  /** tpm2_quote -o output (tpm2-tools' PCR file format); never sent, useful for tpm2_checkquote. */
  readonly toolsPcrs: Buffer;
}

const NONCE = /^[0-9a-f]{2,128}$/;

/**
 * TPM2_Quote (Part 3 §18.4) over the SHA-256 bank with the AK bound at provisioning: the EK is
 * re-created from its template (same seed, same key), the AK blob loaded under it (the EK's
 * policy is PolicySecret(TPM_RH_ENDORSEMENT)), then quoted with the server's nonce as
 * qualifyingData, and the PCRs read with tpm2_pcrread.
 *
 * @throws FleetkeyError CONFIG_INVALID (no AK in the bundle: provision with a TPM first) | INTERNAL (a tool failed)
 */
export async function quoteWithAk(tools: TpmTools, bundleDir: string, pcrs: readonly number[], nonceHex: string): Promise<TpmQuoteResult> {
  if (!NONCE.test(nonceHex)) throw new FleetkeyError('INTERNAL', { detail: 'server nonce is not hex' });
  if (pcrs.length === 0 || pcrs.some((p) => !Number.isInteger(p) || p < 0 || p > 23)) throw new FleetkeyError('INTERNAL', { detail: 'server asked for an invalid PCR selection' });
  for (const [name, file] of [['ak.pub', TPM_AK_FILES.public], ['ak.priv', TPM_AK_FILES.private]] as const) {
    let data: Buffer;
    try {
      data = await readSecretFile(join(bundleDir, file));
    } catch (e) {
      throw new FleetkeyError('CONFIG_INVALID', { detail: `device bundle: ${file} missing or unreadable (provision with a TPM first)`, cause: e });
    }
    await writeFile(tools.path(name), data, { mode: 0o600 });
  }
  await tools.run('tpm2_createek', ['-c', 'ek.ctx', '-G', 'rsa', '-u', 'ek.pub']);
  await tools.run('tpm2_startauthsession', ['--policy-session', '-S', 'session.ctx']);
  try {
    await tools.run('tpm2_policysecret', ['-S', 'session.ctx', '-c', 'e']);
    await tools.run('tpm2_load', ['-C', 'ek.ctx', '-P', 'session:session.ctx', '-u', 'ak.pub', '-r', 'ak.priv', '-c', 'ak.ctx']);
  } finally {
    await tools.run('tpm2_flushcontext', ['session.ctx']).catch(() => undefined);
  }
  const sel = `sha256:${[...pcrs].sort((a, b) => a - b).join(',')}`;
  await tools.run('tpm2_quote', ['-c', 'ak.ctx', '-l', sel, '-q', nonceHex, '-m', 'quote.msg', '-s', 'quote.sig', '-o', 'quote.pcrs', '-g', 'sha256']);
  await tools.run('tpm2_pcrread', [sel, '-o', 'pcrs.bin']);
  const raw = await readFile(tools.path('pcrs.bin'));
  const sorted = [...pcrs].sort((a, b) => a - b);
  if (raw.length !== 32 * sorted.length) throw new FleetkeyError('INTERNAL', { detail: `tpm2_pcrread returned ${raw.length} bytes for ${sorted.length} PCRs` });
  const values: Record<string, string> = {};
  sorted.forEach((p, i) => {
    values[String(p)] = raw.subarray(32 * i, 32 * (i + 1)).toString('hex');
  });
  return { quote: await readFile(tools.path('quote.msg')), signature: await readFile(tools.path('quote.sig')), pcrs: values, toolsPcrs: await readFile(tools.path('quote.pcrs')) };
}
