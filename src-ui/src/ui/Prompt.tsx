// The incoming-call prompt: a call started in the room, or someone rings you.

import { Icon } from "./icons";
import { useEngine, useEngineState } from "./hooks";

export function IncomingPrompt() {
  const engine = useEngine();
  const { prompt } = useEngineState();
  if (!prompt) return null;
  const who = prompt.kind === "ring" ? prompt.fromName : prompt.byName;
  const what = prompt.kind === "ring" ? `${who} is calling you` : `${who} started a call`;
  return (
    <div className="prompt" role="alertdialog" aria-labelledby="prompt-title">
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
