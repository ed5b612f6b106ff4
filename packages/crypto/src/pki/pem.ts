import { FleetkeyError } from '@fleetkey/protocol';

/** Wraps DER in a PEM block (RFC 7468 §2: 64-character lines). */
export function toPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

const PEM_RE = /^-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n?-----END \1-----\s*$/;

/**
 * Reads exactly one PEM block whose label is one of `labels` (RFC 7468 §3 strict base64).
 */
export function fromPem(text: string, labels: readonly string[], code: 'CSR_MALFORMED' | 'CERT_ISSUER_INVALID'): Buffer {
  const m = PEM_RE.exec(text.trim());
  if (m === null || !labels.includes(m[1]!)) throw new FleetkeyError(code, { detail: 'not a PEM block with an expected label' });
  const b64 = m[2]!.replace(/\r?\n/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
    throw new FleetkeyError(code, { detail: 'PEM body is not strict base64' });
  }
  return Buffer.from(b64, 'base64');
}

export function looksLikePem(input: Buffer | string): boolean {
  const head = typeof input === 'string' ? input.trimStart().slice(0, 11) : input.subarray(0, 64).toString('latin1').trimStart().slice(0, 11);
  return head === '-----BEGIN ';
}
