/**
 * One byte range of a `Range` header (RFC 9110 §14.1.2, §14.2). Multiple ranges are not served:
 * a server MAY ignore Range (§14.2), and the whole file is then sent with 200. Returns
 * `'unsatisfiable'` for a range that selects nothing (§15.5.17, 416), `null` for "send it all".
 */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | null {
  if (header === undefined) return null;
  const m = /^bytes=(\d{0,15})-(\d{0,15})$/.exec(header.trim());
  if (m === null) return null; // other units, several ranges, garbage: ignored (§14.2)
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return null;
  if (a === '') {
    // suffix-range: the last N bytes (§14.1.2)
    const n = Number(b);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  if (start >= size) return 'unsatisfiable';
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (end < start) return null; // invalid range-spec: ignore the header (§14.1.1)
  return { start, end };
}
