import { defineConfig } from 'vite';

// No plugin needed: esbuild compiles TSX to Preact's automatic JSX runtime. Hashed file names
// under assets/ are what the server caches for a year; index.html is served no-cache.
export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // No inline <script> or style: the CSP allows only same-origin files (script-src 'self').
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
});
