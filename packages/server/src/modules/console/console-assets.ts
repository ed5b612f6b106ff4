import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** packages/console/dist, from this file in src/ (tests) or dist/ (the built server): same depth. */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL('../../../../console/dist', import.meta.url));

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

export interface Asset {
  readonly body: Buffer;
  readonly type: string;
}

export interface ConsoleAssets {
  readonly index: Buffer | null;
  /** Hashed files under assets/, by file name: immutable, so cached for a year. */
  readonly files: ReadonlyMap<string, Asset>;
}

/**
 * Reads the built console once at boot (a few files, ~100 KB): serving is a map lookup, and no
 * request path ever reaches the file system (no traversal to defend).
 */
export function loadConsoleAssets(dir = DEFAULT_CONSOLE_DIR): ConsoleAssets {
  const indexPath = join(dir, 'index.html');
  if (!existsSync(indexPath)) return { index: null, files: new Map() };
  const files = new Map<string, Asset>();
  const assets = join(dir, 'assets');
  if (existsSync(assets)) {
    for (const f of readdirSync(assets)) {
      const type = TYPES[extname(f)];
      if (type === undefined || !statSync(join(assets, f)).isFile()) continue;
      files.set(f, { body: readFileSync(join(assets, f)), type });
    }
  }
  return { index: readFileSync(indexPath), files };
}
