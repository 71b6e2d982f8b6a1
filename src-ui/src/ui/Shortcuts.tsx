// The keyboard shortcuts sheet: "?" anywhere in a room (outside a text
// field) or the header's "?" button opens it; Escape or Close shuts it and
// gives the focus back.

import { Modal } from "./Modal";

/** Every shortcut the room knows, as the sheet lists them. */
export const SHORTCUTS: ReadonlyArray<[keys: string[], what: string]> = [
  [["Space"], "Hold to talk while muted (in a call, outside buttons and text fields)"],
  [["M"], "Mute or unmute the microphone"],
  [["V"], "Turn the camera off or on"],
  [["H"], "Raise or lower your hand"],
  [["P"], "Hide or show the side panels in a call"],
  [["Shift", "L"], "Leave the call"],
  [["Enter"], "Send the message"],
  [["Shift", "Enter"], "New line in a message"],
  [["Escape"], "Close a menu, dialog or picture"],
  [["?"], "Show this list"],
];

export function ShortcutsSheet({ close }: { close: () => void }) {
  return (
    <Modal className="shortcuts" labelledBy="shortcuts-title" close={close}>
      <h2 id="shortcuts-title">Keyboard shortcuts</h2>
      <dl>
        {SHORTCUTS.map(([keys, what]) => (
          <div key={keys.join("+")}>
            <dt>
              {keys.map((k, i) => (
                <span key={k}>
                  {i > 0 && " + "}
                  <kbd>{k}</kbd>
                </span>
              ))}
            </dt>
            <dd>{what}</dd>
          </div>
        ))}
      </dl>
    </Modal>
  );
}
