import { defineConfig } from 'vite';

// Built by `npm run build:web` into web/dist, which `lantern serve` serves; no network needed.
export default defineConfig({
  root: __dirname,
  base: './',
  logLevel: 'warn',
  build: { outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 2500, reportCompressedSize: false },
});
