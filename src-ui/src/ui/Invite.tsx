// Inviting people: the room's links with Copy buttons — in the header's
// "Invite" popover, in an empty room, and in the desktop app's hosting
// panel — and, for a room this app hosts, the certificate fingerprint a
// guest's browser shows.

import { useEffect, useRef, useState } from "react";
import type { InviteLinks } from "../engine/invite";
import { Icon } from "./icons";
import { useEngine, useEngineState, usePopover } from "./hooks";

/** Puts `text` on the clipboard: the Clipboard API, else the older
 * selection copy; false when neither works (the text stays selectable). */
async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    let copied = false;
    try {
      copied = document.execCommand("copy");
    } catch {
      copied = false;
    }
    area.remove();
    return copied;
  }
}

/** A read-only link with a Copy button that says whether it worked. */
export function CopyField({ label, value, testId }: { label: string; value: string; testId?: string }) {
  const [said, setSaid] = useState<"" | "Copied" | "Select and copy it">("");
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (!said) return;
    const t = setTimeout(() => setSaid(""), 2500);
    return () => clearTimeout(t);
  }, [said]);
  return (
    <div className="copy-field" data-testid={testId}>
      <label>
        {label}
        <span className="copy-row">
          <input ref={input} readOnly value={value} onFocus={(e) => e.target.select()} />
          <button
            type="button"
            onClick={() =>
              void copyText(value).then((ok) => {
                setSaid(ok ? "Copied" : "Select and copy it");
                if (!ok) input.current?.select();
              })
            }
          >
            <Icon name="copy" size={15} /> Copy
          </button>
        </span>
      </label>
      <span className="copy-said" role="status">
        {said}
      </span>
    </div>
  );
}

/** The room's links, fetched from the engine. */
function useInviteLinks(room: string | undefined): InviteLinks | null {
  const engine = useEngine();
  const hosting = useEngineState().desktop?.hosting;
  const [links, setLinks] = useState<InviteLinks | null>(null);
  useEffect(() => {
    if (!room) return setLinks(null);
    let live = true;
    void engine.inviteLinks(room).then(
      (l) => live && setLinks(l),
      () => live && setLinks(null),
    );
    return () => {
      live = false;
    };
  }, [engine, room, hosting]);
  return links;
}

/** The links themselves: the browser page, the app link, the fingerprint. */
export function InviteFields({ room }: { room: string | undefined }) {
  const links = useInviteLinks(room);
  if (!links) return null;
  return (
    <>
      {links.web && <CopyField label="In a browser" value={links.web} testId="invite-web" />}
      <CopyField label="In the Huddle app" value={links.app} testId="invite-app" />
      {links.fingerprint && (
        <p className="fingerprint" data-testid="fingerprint">
          This computer's certificate (browsers warn once that no authority signed it; it should show this SHA-256
          fingerprint): <code>{links.fingerprint}</code>
        </p>
      )}
    </>
  );
}

/** The header's Invite button and its popover. */
export function InviteButton() {
  const state = useEngineState();
  const { open, toggle, button } = usePopover();
  return (
    <span className="invite">
      <button type="button" ref={button} aria-expanded={open} onClick={toggle}>
        <Icon name="link" /> Invite
      </button>
      {open && (
        <div className="invite-menu" role="dialog" aria-label="Invite people">
          <p className="muted">
            {state.room?.locked
              ? "Anyone with a link still needs the room's password."
              : "Anyone with a link can join this room."}
            {state.desktop?.hosting
              ? " The links carry this server's passcode: share them only with the people you invite."
              : ""}
          </p>
          <InviteFields room={state.room?.name} />
        </div>
      )}
    </span>
  );
}

/** Shown while nobody else is in the room. */
export function EmptyRoomInvite() {
  const state = useEngineState();
  if (state.members.length > 0 || state.status !== "joined") return null;
  return (
    <section className="empty-room" aria-label="Invite people" data-testid="empty-room">
      <p>
        <strong>You're the only one here.</strong> Send someone a link to this room:
      </p>
      <InviteFields room={state.room?.name} />
    </section>
  );
}
