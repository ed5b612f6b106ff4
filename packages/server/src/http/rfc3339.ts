// RFC 3339 §5.6 date-time: full-date "T" full-time, with a time zone (Z or ±hh:mm). Lower-case
// t/z are allowed by §5.6's NOTE; a space separator is not.
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-](\d{2}):(\d{2}))$/;

const leap = (y: number): boolean => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
// RFC 3339 Appendix C, without Date.UTC (which maps years 0-99 onto 1900-1999).
const daysIn = (year: number, month: number): number => (month === 2 ? (leap(year) ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31);

/**
 * A strict RFC 3339 timestamp that Date represents exactly. Refused: leap seconds (second 60,
 * which §5.6 allows but Date.parse answers NaN for), days a month does not have (02-30), hours
 * past 23, offsets past 23:59, and anything Date.parse would guess at.
 */
export function isRfc3339DateTime(value: string): boolean {
  const m = DATE_TIME.exec(value);
  if (m === null) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return false;
  if (hour > 23 || minute > 59 || second > 59) return false;
  if (m[9] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59)) return false;
  return Number.isFinite(Date.parse(value.toUpperCase()));
}
