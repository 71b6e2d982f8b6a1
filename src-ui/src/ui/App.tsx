// The app shell: lobby or room, the theme, and the `/r/<room>` route.

import { useEffect, useState } from "react";
import { Lobby } from "./Lobby";
import { Room } from "./Room";
import { useEngine, useEngineState } from "./hooks";
import { storage } from "./storage";
import { alertIfAway } from "./alerts";

/** The room named by a `/r/<room>` path, if any. */
export function roomFromPath(pathname: string): string {
  const match = /^\/r\/(.+)$/.exec(pathname);
  if (!match) return "";
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return "";
  }
}

function preferredTheme(): "light" | "dark" {
  return storage.theme() ?? (window.matchMedia?.("(prefers-color-scheme: dark)").matches ? "dark" : "light");
}

export function App() {
  const engine = useEngine();
  const state = useEngineState();
  const [theme, setTheme] = useState(preferredTheme);
  const inRoom = state.status !== "idle" && state.status !== "connecting" && state.room !== null;

  useEffect(() => {
    document.documentElement.dataset.theme = theme;
  }, [theme]);

  // The address bar follows the room, so the link can be shared.
  useEffect(() => {
    if (inRoom && state.room) {
      const path = `/r/${encodeURIComponent(state.room.name)}`;
      if (location.pathname !== path) history.replaceState(null, "", path);
      storage.addRecentRoom(state.room.name);
      document.title = `${state.room.name} · Huddle`;
    } else {
      document.title = "Huddle";
    }
  }, [inRoom, state.room]);

  // A call starting or someone ringing while the window is elsewhere.
  useEffect(() => {
    if (!state.prompt) return;
    const native =
      engine.desktop && state.desktop ? { focused: state.desktop.focused, notify: engine.desktop.notify } : undefined;
    alertIfAway(state.prompt, state.room?.name, native);
    // Once per prompt: a change of focus later does not alert again.
    // eslint-disable-next-line react-hooks/exhaustive-deps -- state.desktop left out on purpose
  }, [state.prompt, state.room?.name, engine]);

  useEffect(() => {
    const base = inRoom && state.room ? `${state.room.name} · Huddle` : "Huddle";
    document.title = state.unread > 0 ? `(${state.unread}) ${base}` : base;
  }, [inRoom, state.room, state.unread]);

  const toggleTheme = () => {
    const next = theme === "dark" ? "light" : "dark";
    storage.setTheme(next);
    setTheme(next);
  };

  return (
    <>
      {inRoom ? (
        <Room theme={theme} toggleTheme={toggleTheme} />
      ) : (
        <Lobby
          key={state.desktop?.openedLink?.seq ?? 0}
          initialRoom={state.desktop?.openedLink?.room ?? roomFromPath(location.pathname)}
        />
      )}
      {state.desktop?.confirmClose && <ConfirmClose />}
    </>
  );
}

/** The desktop window's close button during a call. */
function ConfirmClose() {
  const engine = useEngine();
  return (
    <div className="modal-backdrop">
      <div className="modal" role="alertdialog" aria-labelledby="confirm-close-title">
        <h2 id="confirm-close-title">Leave the call and quit?</h2>
        <p>You are in a call. Closing Huddle ends it for you.</p>
        <div className="actions">
          <button type="button" onClick={() => engine.desktop?.confirmClose(false)} autoFocus>
            Stay
          </button>
          <button type="button" className="hangup" onClick={() => engine.desktop?.confirmClose(true)}>
            Leave and quit
          </button>
        </div>
      </div>
    </div>
  );
}
