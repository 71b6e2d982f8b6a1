// Entry point in the browser: the browser engine, connected to the server
// that served this page.

import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./ui/App";
import { EngineContext } from "./ui/hooks";
import { BrowserEngine } from "./engine/browser";
import { defaultServerUrl } from "./engine/signaling";
import "./ui/styles.css";

const params = new URLSearchParams(location.search);
const engine = new BrowserEngine(params.get("server") ?? defaultServerUrl(location));
window.addEventListener("pagehide", () => {
  // A closed tab cannot resume (the token lives in memory): leave at once
  // rather than linger for the grace period.
  engine.leave();
  engine.dispose();
});
// For end-to-end tests and curious users: the engine's state, read-only.
(window as unknown as { huddle: { state: () => unknown } }).huddle = { state: () => engine.getState() };

const root = document.getElementById("root");
if (root) {
  createRoot(root).render(
    <StrictMode>
      <EngineContext.Provider value={engine}>
        <App />
      </EngineContext.Provider>
    </StrictMode>,
  );
}
