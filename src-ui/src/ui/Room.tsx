// A joined room: header (room, connection, call), members, the call and
// the chat, with keyboard shortcuts for the call.

import { Icon } from "./icons";
import { useCallback, useEffect, useState } from "react";
import { CallGrid } from "./CallGrid";
import { callTiles, SELF, spotlightOf, type View } from "./layout";
import { nameOf } from "../engine/session";
import { Chat } from "./Chat";
import { Controls } from "./Controls";
import { Members } from "./Members";
import { IncomingPrompt } from "./Prompt";
import { InviteButton } from "./Invite";
import { ShortcutsSheet } from "./Shortcuts";
import { PreJoin } from "./PreJoin";
import { useEngine, useEngineState, useNow } from "./hooks";
import { formatDuration } from "../engine/session";

function ConnectionPill() {
  const { status } = useEngineState();
  const label =
    status === "joined"
      ? "Connected"
      : status === "reconnecting"
        ? "Reconnecting…"
        : status === "offline"
          ? "Offline"
          : "Connecting…";
  return (
    <span className={`pill ${status}`} role="status" data-testid="connection">
      {label}
    </span>
  );
}

function CallDuration({ startedAt }: { startedAt: number }) {
  const now = useNow();
  return (
    <span className="call-duration" aria-label="Call duration" data-testid="call-duration">
      {formatDuration(now - startedAt)}
    </span>
  );
}

function isTyping(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  return (
    !!el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable)
  );
}

/** Whether `target` is a control that Space activates (a button, a link…). */
function isControl(target: EventTarget | null): boolean {
  return (
    target instanceof Element && target.closest("button, a[href], summary, [role=button], [role=menuitem]") !== null
  );
}

export function Room({ theme, toggleTheme }: { theme: string; toggleTheme: () => void }) {
  const engine = useEngine();
  const state = useEngineState();
  const [directTo, setDirectTo] = useState<string | null>(null);
  const [showStats, setShowStats] = useState(false);
  const [tab, setTab] = useState<"chat" | "members">("chat");
  const [shortcuts, setShortcuts] = useState(false);
  // The call's view: grid or spotlight, a pinned tile, side panels shown.
  const [view, setView] = useState<View>("grid");
  const [pinned, setPinned] = useState<string | null>(null);
  const [panels, setPanels] = useState(true);
  // The check before joining the call, with the camera on or off to begin with.
  const [prejoin, setPrejoin] = useState<{ video: boolean } | null>(null);
  const closePrejoin = useCallback(() => setPrejoin(null), []);
  const closeShortcuts = useCallback(() => setShortcuts(false), []);

  // "?" opens the shortcuts sheet, in or out of a call.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== "?" || isTyping(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
      e.preventDefault();
      setShortcuts(true);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  // Push to talk: while muted, holding the space bar unmutes.
  const [talking, setTalking] = useState(false);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (isTyping(e.target) || e.ctrlKey || e.metaKey || e.altKey || !state.inCall) return;
      // Space on a focused button presses it; it is push-to-talk elsewhere.
      if (e.key === " " && isControl(e.target)) return;
      if (e.key === " ") {
        if (!e.repeat && !state.local.audio) {
          setTalking(true);
          engine.setMicrophone(true);
        }
      } else if (e.key === "m" || e.key === "M") engine.setMicrophone(!state.local.audio);
      else if (e.key === "v" || e.key === "V") void engine.setCamera(!state.local.video);
      else if (e.key === "h" || e.key === "H") engine.setHand(!state.self?.hand);
      else if (e.key === "p" || e.key === "P") setPanels((p) => !p);
      else if (e.key === "L" && e.shiftKey) engine.leaveCall();
      else return;
      e.preventDefault();
    };
    const onKeyUp = (e: KeyboardEvent) => {
      if (e.key === " " && talking) {
        setTalking(false);
        engine.setMicrophone(false);
      }
    };
    window.addEventListener("keydown", onKey);
    window.addEventListener("keyup", onKeyUp);
    return () => {
      window.removeEventListener("keydown", onKey);
      window.removeEventListener("keyup", onKeyUp);
    };
  }, [engine, state.inCall, state.local.audio, state.local.video, state.self?.hand, talking]);

  // A direct-message target that left is no longer selectable.
  useEffect(() => {
    if (directTo && !state.members.some((m) => m.id === directTo)) setDirectTo(null);
  }, [directTo, state.members]);

  // The desktop app's picture-in-picture window follows the spotlight.
  const pipOn = !!state.desktop?.pip;
  const pipMember = state.inCall ? spotlightOf({ pinned, speaker: state.speaker, ...callTiles(state) }) : null;
  const pipName = pipMember === null ? "" : pipMember === SELF ? "You" : nameOf(state, pipMember);
  useEffect(() => {
    if (pipOn && pipMember !== null) engine.desktop?.pip({ member: pipMember, name: pipName });
  }, [engine, pipOn, pipMember, pipName]);

  const call = state.call;
  const inCallCount = call?.members.length ?? 0;
  return (
    <div className={`room${state.inCall ? " in-call" : ""}${state.inCall && !panels ? " panels-hidden" : ""}`}>
      <header className="room-header">
        <div className="room-title">
          <span className="brand-mark small" aria-hidden="true" />
          <h1>{state.room?.name}</h1>
          {state.room?.locked && <Icon name="lock" label="password protected" size={16} />}
          <ConnectionPill />
        </div>
        <div className="room-actions">
          {call && <CallDuration startedAt={call.startedAt} />}
          {!state.inCall && (
            <>
              <button
                type="button"
                className="primary"
                onClick={() => setPrejoin({ video: true })}
                aria-haspopup="dialog"
              >
                {call ? `Join call (${inCallCount})` : "Start video call"}
              </button>
              <button type="button" onClick={() => setPrejoin({ video: false })} aria-haspopup="dialog">
                {call ? "Join with audio" : "Audio call"}
              </button>
            </>
          )}
          <InviteButton />
          <button
            type="button"
            className="icon"
            onClick={() => setShortcuts(true)}
            aria-label="Keyboard shortcuts"
            title="Keyboard shortcuts (?)"
            aria-haspopup="dialog"
          >
            ?
          </button>
          <button
            type="button"
            className="icon"
            onClick={toggleTheme}
            aria-label={`Switch to ${theme === "dark" ? "light" : "dark"} theme`}
            title="Theme"
          >
            <Icon name={theme === "dark" ? "sun" : "moon"} />
          </button>
          <button type="button" onClick={() => engine.leave()}>
            Leave room
          </button>
        </div>
      </header>
      {(state.status === "reconnecting" || state.status === "offline") && (
        <div className={`banner ${state.status}`} role="alert">
          {state.status === "reconnecting"
            ? "Connection lost. Reconnecting… your call keeps going meanwhile."
            : (state.error?.message ?? "Offline.")}
          {state.status === "offline" && (
            <button type="button" onClick={() => engine.retry()}>
              Retry now
            </button>
          )}
        </div>
      )}
      {state.error && state.error.code !== "attachment" && state.error.code !== "connection" && (
        <div className="banner error" role="alert">
          <span>{state.error.message}</span>
          <button
            type="button"
            className="icon dismiss"
            aria-label="Dismiss"
            title="Dismiss"
            onClick={() => engine.dismissError()}
          >
            <Icon name="close" size={16} />
          </button>
        </div>
      )}
      <IncomingPrompt preparing={!!prejoin && !state.inCall} />
      {shortcuts && <ShortcutsSheet close={closeShortcuts} />}
      {prejoin && !state.inCall && <PreJoin video={prejoin.video} close={closePrejoin} />}
      <nav className="tabs" aria-label="Panels">
        <button type="button" aria-pressed={tab === "chat"} onClick={() => setTab("chat")}>
          Chat{state.unread > 0 && <span className="unread-badge">{state.unread}</span>}
        </button>
        <button type="button" aria-pressed={tab === "members"} onClick={() => setTab("members")}>
          Members ({state.members.length + 1})
        </button>
      </nav>
      <div className={`room-body show-${tab}`}>
        <Members
          onDirect={(id) => {
            setDirectTo(id);
            setTab("chat");
          }}
        />
        {state.inCall && (
          <main className="stage">
            <div className="stage-bar" role="toolbar" aria-label="View">
              <div className="segmented" role="group" aria-label="Layout">
                <button
                  type="button"
                  aria-pressed={view === "grid"}
                  onClick={() => {
                    setView("grid");
                    setPinned(null);
                  }}
                  title="Grid: everyone the same size"
                >
                  <Icon name="grid" /> Grid
                </button>
                <button
                  type="button"
                  aria-pressed={view === "spotlight"}
                  onClick={() => setView("spotlight")}
                  title="Spotlight: one large, the others in a strip"
                >
                  <Icon name="spotlight" /> Spotlight
                </button>
              </div>
              {engine.desktop && (
                <button
                  type="button"
                  aria-pressed={pipOn}
                  onClick={() =>
                    engine.desktop?.pip(pipOn || pipMember === null ? null : { member: pipMember, name: pipName })
                  }
                  title="A small window that stays on top with whoever is in the spotlight"
                >
                  <Icon name="pip" /> {pipOn ? "Close picture in picture" : "Picture in picture"}
                </button>
              )}
              <button
                type="button"
                aria-pressed={!panels}
                onClick={() => setPanels(!panels)}
                title="Hide or show the members and chat (P)"
              >
                <Icon name="panels" /> {panels ? "Hide panels" : "Show panels"}
              </button>
            </div>
            <CallGrid showStats={showStats} layout={{ view, setView, pinned, setPinned }} />
            <Controls showStats={showStats} setShowStats={setShowStats} />
          </main>
        )}
        <Chat directTo={directTo} setDirectTo={setDirectTo} />
      </div>
    </div>
  );
}
