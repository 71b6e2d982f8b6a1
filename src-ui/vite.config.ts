/// <reference types="vitest" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` proxies the signaling socket to a local huddle-server
// (`cargo xtask run`), so the UI can be developed with hot reload.
export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false },
  server: {
    proxy: { "/ws": { target: "ws://127.0.0.1:8443", ws: true } },
  },
  test: { environment: "node", include: ["tests/**/*.test.ts"] },
});
