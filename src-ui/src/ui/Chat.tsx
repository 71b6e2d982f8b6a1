// The chat: room messages, direct messages, join/leave lines, typing,
// image attachments (paste, drop or pick) and an unread marker.

import { Icon } from "./icons";
import {
  useEffect,
  useLayoutEffect,
  useRef,
  useState,
  type ClipboardEvent,
  type DragEvent,
  type KeyboardEvent,
} from "react";
import type { Attachment } from "../protocol";
import { EmptyRoomInvite } from "./Invite";
import { useEngine, useEngineState } from "./hooks";
import { Modal } from "./Modal";
import { linkify } from "./linkify";
import { nameOf } from "../engine/session";

/** The only image types sent and drawn: what the protocol allows, whatever a
 * server relays (an SVG or HTML "image" is never put on the page). */
const IMAGE_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"];
/** Stop "typing" after this long without a keystroke. */
const TYPING_IDLE_MS = 3000;

function time(ts: number): string {
  return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

async function readAttachment(file: File): Promise<Attachment> {
  const buffer = await file.arrayBuffer();
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return { mime: file.type, name: file.name || "image", data: btoa(binary) };
}

export function Chat({ directTo, setDirectTo }: { directTo: string | null; setDirectTo: (id: string | null) => void }) {
  const engine = useEngine();
  const state = useEngineState();
  const [text, setText] = useState("");
  const [attachment, setAttachment] = useState<Attachment | null>(null);
  const [localError, setLocalError] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);
  const [viewing, setViewing] = useState<Attachment | null>(null);
  const listRef = useRef<HTMLOListElement>(null);
  const fileRef = useRef<HTMLInputElement>(null);
  const typingRef = useRef<{ active: boolean; timer: ReturnType<typeof setTimeout> | null }>({
    active: false,
    timer: null,
  });
  // The "new" marker stays a few seconds after the lines were read.
  const [marker, setMarker] = useState<string | null>(state.firstUnread);
  const maxBytes = state.limits?.max_attachment_bytes ?? 0;

  // New lines scroll into view if the reader was at the bottom (or wrote
  // them); a reader scrolled up to older lines stays there, and a pill
  // says how many new lines wait below.
  const atBottom = useRef(true);
  const lastSeen = useRef<string | null>(null);
  const [below, setBelow] = useState(0);
  const lastLine = state.chat[state.chat.length - 1];
  useLayoutEffect(() => {
    const list = listRef.current;
    if (!list) return;
    const isNew = !!lastLine && lastLine.id !== lastSeen.current;
    lastSeen.current = lastLine?.id ?? null;
    const mine = lastLine?.kind === "chat" && lastLine.own;
    if (atBottom.current || mine || !isNew) {
      list.scrollTop = list.scrollHeight;
      setBelow(0);
    } else {
      setBelow((n) => n + 1);
    }
  }, [lastLine, state.outgoing.length]);
  const onScroll = () => {
    const list = listRef.current;
    if (!list) return;
    atBottom.current = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    if (atBottom.current) setBelow(0);
  };
  const toBottom = () => {
    const list = listRef.current;
    if (list) list.scrollTop = list.scrollHeight;
    atBottom.current = true;
    setBelow(0);
  };

  useEffect(() => {
    const onFocus = () => {
      if (document.visibilityState === "visible" && document.hasFocus()) {
        engine.markRead();
      }
    };
    onFocus();
    window.addEventListener("focus", onFocus);
    document.addEventListener("visibilitychange", onFocus);
    return () => {
      window.removeEventListener("focus", onFocus);
      document.removeEventListener("visibilitychange", onFocus);
    };
  }, [engine, state.chat.length]);

  useEffect(() => {
    if (state.firstUnread) {
      setMarker(state.firstUnread);
      return;
    }
    const t = setTimeout(() => setMarker(null), 4000);
    return () => clearTimeout(t);
  }, [state.firstUnread]);

  const stopTyping = () => {
    const t = typingRef.current;
    if (t.timer) clearTimeout(t.timer);
    t.timer = null;
    if (t.active) engine.setTyping(false, directTo ?? undefined);
    t.active = false;
  };

  const onType = (value: string) => {
    setText(value);
    const t = typingRef.current;
    if (value && !t.active) {
      engine.setTyping(true, directTo ?? undefined);
      t.active = true;
    }
    if (t.timer) clearTimeout(t.timer);
    t.timer = value ? setTimeout(stopTyping, TYPING_IDLE_MS) : null;
    if (!value) stopTyping();
  };

  const attach = async (file: File | undefined | null) => {
    if (!file) return;
    setLocalError(null);
    if (!IMAGE_TYPES.includes(file.type)) {
      setLocalError("Only PNG, JPEG, GIF and WebP images can be attached.");
      return;
    }
    if (maxBytes === 0) {
      setLocalError("This server does not accept attachments.");
      return;
    }
    if (file.size > maxBytes) {
      setLocalError(
        `That image is ${Math.ceil(file.size / 1024)} KiB; the limit is ${Math.floor(maxBytes / 1024)} KiB.`,
      );
      return;
    }
    setAttachment(await readAttachment(file));
  };

  const send = () => {
    const body = text.trim();
    if (!body && !attachment) return;
    const max = state.limits?.max_chat_chars ?? 4000;
    if ([...body].length > max) {
      setLocalError(`Messages are at most ${max} characters.`);
      return;
    }
    engine.sendChat(body, { to: directTo ?? undefined, attachment: attachment ?? undefined });
    setText("");
    setAttachment(null);
    setLocalError(null);
    stopTyping();
  };

  const onKey = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      send();
    }
  };

  const onPaste = (e: ClipboardEvent) => {
    const file = [...e.clipboardData.files].find((f) => f.type.startsWith("image/"));
    if (file) {
      e.preventDefault();
      void attach(file);
    }
  };

  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    void attach(e.dataTransfer.files[0]);
  };

  const typingNames = Object.keys(state.typing)
    .filter((id) => id !== state.self?.id)
    .map((id) => nameOf(state, id));

  return (
    <section
      className={`chat${dragging ? " dragging" : ""}`}
      aria-label="Chat"
      onDragOver={(e) => {
        e.preventDefault();
        setDragging(true);
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={onDrop}
    >
      <EmptyRoomInvite />
      <ol className="messages" ref={listRef} aria-live="polite" onScroll={onScroll}>
        {state.chat.map((line) => (
          <li
            key={line.id}
            className={
              line.kind === "system" ? "system-line" : `message${line.own ? " own" : ""}${line.to ? " direct" : ""}`
            }
            data-testid={line.kind === "chat" ? "message" : "system"}
          >
            {line.id === marker && (
              <div className="unread-marker" role="separator">
                new
              </div>
            )}
            {line.kind === "system" ? (
              <span>{line.text}</span>
            ) : (
              <>
                <div className="message-head">
                  <span className="message-from">{line.own ? "You" : line.fromName}</span>
                  {line.to && <span className="dm-badge">{line.own ? `to ${line.toName}` : "direct"}</span>}
                  <time dateTime={new Date(line.ts).toISOString()}>{time(line.ts)}</time>
                </div>
                {line.text && <p className="message-text">{linkify(line.text)}</p>}
                {line.attachment && IMAGE_TYPES.includes(line.attachment.mime) && (
                  <button
                    type="button"
                    className="attachment"
                    aria-label={`Open ${line.attachment.name}`}
                    onClick={() => setViewing(line.attachment ?? null)}
                  >
                    <img
                      src={`data:${line.attachment.mime};base64,${line.attachment.data}`}
                      alt={line.attachment.name}
                    />
                  </button>
                )}
              </>
            )}
          </li>
        ))}
        {state.outgoing.map((o) => (
          <li
            key={o.rid}
            className={`message own pending${o.to ? " direct" : ""}`}
            data-testid="pending-message"
            aria-busy={o.status === "sending"}
          >
            <div className="message-head">
              <span className="message-from">You</span>
              {o.to && <span className="dm-badge">to {o.toName}</span>}
              <span className={`send-status ${o.status}`}>{o.status === "sending" ? "sending…" : "not sent"}</span>
            </div>
            {o.text && <p className="message-text">{o.text}</p>}
            {o.attachment && <p className="message-text muted">{o.attachment.name}</p>}
            {o.status === "failed" && (
              <div className="send-actions">
                <button type="button" onClick={() => engine.retryChat(o.rid)}>
                  Retry
                </button>
                <button type="button" onClick={() => engine.discardChat(o.rid)}>
                  Discard
                </button>
              </div>
            )}
          </li>
        ))}
      </ol>
      {below > 0 && (
        <button type="button" className="new-below" onClick={toBottom} data-testid="new-below">
          {below} new ↓
        </button>
      )}
      <div className="typing-line" aria-live="polite">
        {typingNames.length === 1 && `${typingNames[0]} is typing…`}
        {typingNames.length === 2 && `${typingNames[0]} and ${typingNames[1]} are typing…`}
        {typingNames.length > 2 && "Several people are typing…"}
      </div>
      {(localError || state.error?.code === "attachment") && (
        <p className="form-error" role="alert">
          {localError ?? state.error?.message}
        </p>
      )}
      <div className="composer">
        <div className="composer-row">
          <label className="visually-hidden" htmlFor="dm-target">
            Send to
          </label>
          <select
            id="dm-target"
            value={directTo ?? ""}
            onChange={(e) => setDirectTo(e.target.value || null)}
            aria-label="Send to"
          >
            <option value="">Everyone</option>
            {state.members.map((m) => (
              <option key={m.id} value={m.id}>
                {nameOf(state, m.id)} (direct)
              </option>
            ))}
          </select>
          {attachment && (
            <span className="pending-attachment">
              <img src={`data:${attachment.mime};base64,${attachment.data}`} alt="" />
              {attachment.name}
              <button type="button" className="icon" aria-label="Remove attachment" onClick={() => setAttachment(null)}>
                <Icon name="close" size={14} />
              </button>
            </span>
          )}
        </div>
        <div className="composer-row">
          <button
            type="button"
            className="icon"
            aria-label="Attach an image"
            title="Attach an image"
            onClick={() => fileRef.current?.click()}
          >
            <Icon name="clip" />
          </button>
          <input
            ref={fileRef}
            type="file"
            accept={IMAGE_TYPES.join(",")}
            hidden
            onChange={(e) => void attach(e.target.files?.[0])}
            data-testid="file-input"
          />
          <textarea
            value={text}
            onChange={(e) => onType(e.target.value)}
            onKeyDown={onKey}
            onPaste={onPaste}
            onBlur={stopTyping}
            placeholder={directTo ? `Message ${nameOf(state, directTo)} directly` : "Message the room"}
            aria-label="Message"
            rows={1}
          />
          <button type="button" className="primary" onClick={send} disabled={!text.trim() && !attachment}>
            Send
          </button>
        </div>
      </div>
      {viewing && <ImageViewer image={viewing} close={() => setViewing(null)} />}
    </section>
  );
}

/** An image from the chat at its size (within the window), with a way to
 * download it; Escape or a click outside closes it. */
function ImageViewer({ image, close }: { image: Attachment; close: () => void }) {
  const src = `data:${image.mime};base64,${image.data}`;
  const download = (
    <a href={src} download={image.name}>
      Download
    </a>
  );
  return (
    <Modal className="image-viewer" label={image.name} close={close} actions={download}>
      <img src={src} alt={image.name} />
    </Modal>
  );
}
