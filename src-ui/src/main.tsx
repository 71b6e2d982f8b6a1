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
import { ServerConfirm } from "./ui/ServerConfirm";
import "./ui/styles.css";

/** The server a `?server=` link names, when it is another than the page's
 * own; `null` when there is none (or it is not a WebSocket address). */
function linkedServer(params: URLSearchParams): URL | null {
  const server = params.get("server");
  if (!server) return null;
  try {
    const url = new URL(server);
    if (url.protocol !== "ws:" && url.protocol !== "wss:") return null;
    return url;
  } catch {
    return null;
  }
}

/** Asks whether to follow a link to another server (shown before anything connects). */
function confirmServer(host: string): Promise<boolean> {
  const root = document.getElementById("root");
  if (!root) return Promise.resolve(false);
  return new Promise((resolve) => {
    const ask = createRoot(root);
    ask.render(
      <main className="lobby lobby-single">
        <ServerConfirm
          host={host}
          onAnswer={(accept) => {
            ask.unmount();
            resolve(accept);
          }}
        />
      </main>,
    );
  });
}

async function browserEngine(): Promise<Engine> {
  const params = new URLSearchParams(location.search);
  const own = defaultServerUrl(location);
  let server = own;
  const linked = linkedServer(params);
  if (linked && linked.host !== location.host) {
    // A link may open another server only once the user agreed.
    if (await confirmServer(linked.host)) server = linked.href;
  } else if (linked) {
    server = linked.href;
  }
  // An access token arrives in the link's fragment (`#token=…`), which never
  // reaches a server's log or a Referer; it is taken out of the address bar
  // at once, so it is not bookmarked or shown on screen.
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (token !== null) history.replaceState(null, "", location.pathname + location.search);
  // A link pasted into this tab changes only the fragment: start afresh with it.
  window.addEventListener("hashchange", () => {
    if (new URLSearchParams(location.hash.slice(1)).has("token")) location.reload();
  });
  const engine = new BrowserEngine(server, undefined, token);
  // A reload comes back as the same member, in the same call (reload.ts).
  const navigation = performance.getEntriesByType?.("navigation")[0] as PerformanceNavigationTiming | undefined;
  engine.resumeAfterReload(navigation?.type === "reload");
  window.addEventListener("pagehide", () => engine.keepForReload());
  // Back from the back-forward cache, this page's engine is gone: start over.
  window.addEventListener("pageshow", (e) => {
    if (e.persisted) location.reload();
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
  // Links leave the app for the system's browser: the window shows only the
  // app's own pages (the shell refuses any other navigation too).
  const openOutside = (e: MouseEvent) => {
    const link = e.target instanceof Element ? e.target.closest<HTMLAnchorElement>("a[href]") : null;
    if (!link || !/^https?:/i.test(link.href)) return;
    e.preventDefault();
    tauriIpc.openUrl(link.href).catch((err: unknown) => console.warn("huddle: the link was not opened:", err));
  };
  document.addEventListener("click", openOutside, true);
  document.addEventListener("auxclick", openOutside, true);
  await engine.ready;
  setStorageBackend(settingsBackend(engine));
  (window as unknown as { huddle: object }).huddle = {
    state: () => engine.getState(),
    tiles: () => engine.tileFigures(),
  };
  return engine;
}

/** The desktop app's picture-in-picture window: its own small page, no engine. */
async function pipWindow(root: HTMLElement): Promise<void> {
  const [{ PipWindow }, { tauriIpc }] = await Promise.all([import("./desktop/PipWindow"), import("./desktop/ipc")]);
  createRoot(root).render(
    <StrictMode>
      <PipWindow ipc={tauriIpc} />
    </StrictMode>,
  );
}

async function start(): Promise<void> {
  const { inDesktopApp, windowLabel } = await import("./desktop/ipc");
  const pipRoot = document.getElementById("root");
  if (inDesktopApp() && windowLabel() === "pip" && pipRoot) return pipWindow(pipRoot);
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
