import { sql, type RawBuilder } from 'kysely';

/** A parsed `key=value` tag filter (the route schema TagFilter has already checked both parts). */
export interface TagFilter {
  readonly key: string;
  readonly value: string;
}

export function parseTagFilter(raw: string | undefined): TagFilter | undefined {
  if (raw === undefined) return undefined;
  const i = raw.indexOf('=');
  return { key: raw.slice(0, i), value: raw.slice(i + 1) };
}

/**
 * `tags LIKE '%"key":"value"%'` on the stored JSON text (names.tags, written by JSON.stringify; the
 * same on both stores). Keys and values cannot hold a quote, a backslash or `%` (the schemas), so the
 * quoted pair only matches that exact key with that exact value; LIKE's own `_` is escaped.
 */
export function tagLike(column: string, tag: TagFilter): RawBuilder<boolean> {
  const pattern = `%${JSON.stringify(tag.key)}:${JSON.stringify(tag.value)}%`.replaceAll('\\', '\\\\').replaceAll('_', '\\_');
  return sql<boolean>`${sql.ref(column)} like ${pattern} escape '\\'`;
}

/** The exact check on parsed tags (defence in depth behind the LIKE). */
export function carriesTag(tagsJson: string | null | undefined, tag: TagFilter): boolean {
  if (tagsJson === null || tagsJson === undefined) return false;
  return (JSON.parse(tagsJson) as Record<string, string>)[tag.key] === tag.value;
}
