// The incoming-call prompt: a call started in the room, or someone rings you.

import { useEffect, useRef } from "react";
import { Icon } from "./icons";
import { useEngine, useEngineState } from "./hooks";

/** Whether the user is writing somewhere (a prompt must not take that focus:
 * the next Enter would answer a call). */
function writing(): boolean {
  const el = document.activeElement as HTMLElement | null;
  return (
    !!el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable)
  );
}

/** `preparing`: the "Ready to join?" check is open — its "Join now" joins a
 *  call already started, so that call's prompt would only cover it (a ring
 *  still shows). */
export function IncomingPrompt({ preparing = false }: { preparing?: boolean }) {
  const engine = useEngine();
  const { prompt: incoming } = useEngineState();
  const prompt = preparing && incoming?.kind !== "ring" ? null : incoming;
  const box = useRef<HTMLDivElement>(null);
  // The prompt takes the focus (screen readers announce it, Tab reaches its
  // buttons) unless the user is writing.
  const shown = prompt ? `${prompt.kind}:${prompt.kind === "ring" ? prompt.from : prompt.by}` : null;
  useEffect(() => {
    if (shown && !writing()) box.current?.focus();
  }, [shown]);
  if (!prompt) return null;
  const who = prompt.kind === "ring" ? prompt.fromName : prompt.byName;
  const what = prompt.kind === "ring" ? `${who} is calling you` : `${who} started a call`;
  return (
    <div className="prompt" role="alertdialog" aria-labelledby="prompt-title" tabIndex={-1} ref={box}>
      <p id="prompt-title">
        <span className="ringing" aria-hidden="true">
          <Icon name="phone" size={20} />
        </span>{" "}
        {what}
        {prompt.video ? " (video)" : ""}
      </p>
      <div className="prompt-actions">
        <button type="button" className="primary" onClick={() => void engine.answer(true)}>
          Join
        </button>
        <button type="button" onClick={() => void engine.answer(false)}>
          Decline
        </button>
      </div>
    </div>
  );
}
