// Defence in depth: callers never pass secrets to the audit log, but a key that looks like one
// is replaced before hashing so a slip cannot write a credential into an append-only table.
const SECRET_KEY = /(secret|password|passphrase|token|private|pin|key$|^key|sig$|signature)/i;
const ALLOWED = new Set(['tokenId', 'publicKey', 'keyType', 'keyUsage', 'ski', 'aki']);

export function redactSecrets(detail: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(detail)) {
    if (SECRET_KEY.test(k) && !ALLOWED.has(k)) out[k] = '[redacted]';
    else if (v !== null && typeof v === 'object' && !Array.isArray(v)) out[k] = redactSecrets(v as Record<string, unknown>);
    else out[k] = v;
  }
  return out;
}
