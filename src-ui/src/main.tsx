// Entry point: in a browser, the browser engine connected to the server
// that served this page; in the desktop app, the native engine behind the
// Tauri shell.

import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./ui/App";
import { EngineContext } from "./ui/hooks";
import { setStorageBackend } from "./ui/storage";
import { BrowserEngine } from "./engine/browser";
import { defaultServerUrl } from "./engine/signaling";
import type { Engine } from "./engine/types";
import "./ui/styles.css";

async function browserEngine(): Promise<Engine> {
  const params = new URLSearchParams(location.search);
  const engine = new BrowserEngine(params.get("server") ?? defaultServerUrl(location));
  window.addEventListener("pagehide", () => {
    // A closed tab cannot resume (the token lives in memory): leave at once
    // rather than linger for the grace period.
    engine.leave();
    engine.dispose();
  });
  (window as unknown as { huddle: object }).huddle = { state: () => engine.getState() };
  return engine;
}

async function desktopEngine(): Promise<Engine> {
  const [{ DesktopEngine }, { tauriIpc }, { settingsBackend }] = await Promise.all([
    import("./desktop/engine"),
    import("./desktop/ipc"),
    import("./desktop/storage"),
  ]);
  const engine = new DesktopEngine(tauriIpc);
  await engine.ready;
  setStorageBackend(settingsBackend(engine));
  (window as unknown as { huddle: object }).huddle = { state: () => engine.getState(), tiles: () => engine.tileFigures() };
  return engine;
}

async function start(): Promise<void> {
  const { inDesktopApp } = await import("./desktop/ipc");
  const engine = inDesktopApp() ? await desktopEngine() : await browserEngine();
  const root = document.getElementById("root");
  if (!root) return;
  createRoot(root).render(
    <StrictMode>
      <EngineContext.Provider value={engine}>
        <App />
      </EngineContext.Provider>
    </StrictMode>,
  );
}

start().catch((e: unknown) => {
  const root = document.getElementById("root");
  if (root) root.textContent = `Huddle could not start: ${e instanceof Error ? e.message : String(e)}`;
});
