// Raised hands and reactions in a call: the two controls (a hand toggle and
// a menu of the six reactions the protocol allows) and the overlay where
// reactions float up over the call for a few seconds.

import { useEngine, useEngineState, usePopover } from "./hooks";
import { nameOf, REACTIONS } from "../engine/session";

/** What each reaction is called, for screen readers and tooltips. */
const REACTION_NAMES: Record<(typeof REACTIONS)[number], string> = {
  "\u{1F44D}": "Thumbs up",
  "\u{1F44F}": "Clap",
  "\u{1F602}": "Laugh",
  "\u{1F62E}": "Surprised",
  "\u{2764}\u{FE0F}": "Heart",
  "\u{1F389}": "Celebrate",
};

export const HAND = "\u{270B}";

export function HandButton() {
  const engine = useEngine();
  const raised = !!useEngineState().self?.hand;
  return (
    <button
      type="button"
      className={`control${raised ? " active" : ""}`}
      aria-pressed={raised}
      onClick={() => engine.setHand(!raised)}
      title="Raise hand (H)"
      data-testid="hand"
    >
      <span className="emoji" aria-hidden="true">
        {HAND}
      </span>{" "}
      {raised ? "Lower hand" : "Raise hand"}
    </button>
  );
}

export function ReactionButton() {
  const engine = useEngine();
  const { open, toggle, close, button } = usePopover();
  return (
    <div className="reaction-picker">
      <button
        type="button"
        className="control"
        ref={button}
        aria-expanded={open}
        aria-haspopup="menu"
        onClick={toggle}
        title="Send a reaction"
      >
        <span className="emoji" aria-hidden="true">
          {"\u{1F44D}"}
        </span>{" "}
        React
      </button>
      {open && (
        <div className="reaction-menu" role="menu" aria-label="Reactions">
          {REACTIONS.map((emoji) => (
            <button
              type="button"
              role="menuitem"
              key={emoji}
              aria-label={REACTION_NAMES[emoji]}
              title={REACTION_NAMES[emoji]}
              onClick={() => {
                engine.react(emoji);
                close();
              }}
            >
              {emoji}
            </button>
          ))}
        </div>
      )}
    </div>
  );
}

/** Reactions of the last few seconds, rising over the call with their sender's name. */
export function ReactionsOverlay() {
  const state = useEngineState();
  return (
    <ul className="reactions" aria-live="polite" aria-label="Reactions" data-testid="reactions">
      {state.reactions.map((r) => (
        <li key={r.id} data-from={r.from}>
          <span
            className="reaction-emoji"
            role="img"
            aria-label={REACTION_NAMES[r.emoji as (typeof REACTIONS)[number]] ?? r.emoji}
          >
            {r.emoji}
          </span>
          <span className="reaction-name">{r.from === state.self?.id ? "You" : nameOf(state, r.from)}</span>
        </li>
      ))}
    </ul>
  );
}
