/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The gateway serves the built app at "/" and the API under /api/v1 on the same
// origin; in development (and `vite preview`) the same paths go to a local cluster.
const target = process.env.CRONFLEET_HTTP ?? "http://127.0.0.1:18080";
const proxy = {
  "/api": { target, changeOrigin: false },
  "/healthz": { target },
  "/metrics": { target },
};

export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", sourcemap: false, chunkSizeWarningLimit: 1200 },
  server: { port: 5173, proxy },
  preview: { port: 4173, proxy },
  test: {
    environment: "jsdom",
    setupFiles: ["./src/test/setup.ts"],
    css: false,
    restoreMocks: true,
  },
});
