// Vite configuration of the admin web UI (`ui/`, docs/ui.md): a Preact single-page app built by
// `npm run build` into `dist/ui/` (index.html + hashed `assets/`), served by the gateway at `/ui/`.
//
//   npm run ui:dev      dev server on :5173; API calls go to SWB_URL (default http://127.0.0.1:8080)
import preact from '@preact/preset-vite';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const gateway = process.env.SWB_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  root: fileURLToPath(new URL('./ui', import.meta.url)),
  base: '/ui/',
  plugins: [preact()],
  build: {
    outDir: fileURLToPath(new URL('./dist/ui', import.meta.url)),
    emptyOutDir: true,
    // The gateway's Content-Security-Policy allows no inline script or style: every asset is a file.
    assetsInlineLimit: 0,
    target: 'es2022',
    sourcemap: false,
  },
  server: {
    proxy: {
      '/api': { target: gateway, changeOrigin: false },
      '/mcp': { target: gateway, changeOrigin: false },
      '/servers': { target: gateway, changeOrigin: false },
    },
  },
});
