// Our chat messages until the server confirms them, as pure transitions both
// engines share: each is "sending" until its echo arrives, or "failed" with
// Retry and Discard. Nothing typed is dropped silently.

import type { Attachment } from "../protocol";
import type { RingHost } from "./ringer";
import type { EngineState, OutgoingChat } from "./types";

type Host = Pick<RingHost, "current" | "set" | "now">;

/** How long a message may wait for its echo while the room is joined before
 * it is offered for retry (a resumed membership's queue delivers within it). */
export const CONFIRM_MS = 10_000;

/** The state telling the user an image is too large to send, or null when
 * it fits the server's limit (on its bytes: base64 carries 3 in 4). */
export function refuseLargeAttachment(state: EngineState, attachment?: Attachment): EngineState | null {
  const limits = state.limits;
  if (!attachment || !limits || attachment.data.length * 0.75 <= limits.max_attachment_bytes) return null;
  return { ...state, error: { code: "attachment", message: "That image is too large to send." } };
}

/** A message of ours, "sending" from now. */
function outgoingChat(
  state: EngineState,
  rid: string,
  text: string,
  options: { to?: string; attachment?: Attachment },
  now: number,
  written: boolean,
): OutgoingChat {
  return {
    rid,
    text,
    ...(options.to
      ? { to: options.to, toName: state.members.find((m) => m.id === options.to)?.name ?? "someone" }
      : {}),
    ...(options.attachment ? { attachment: options.attachment } : {}),
    ts: now,
    status: "sending",
    written,
  };
}

/** A message the user sends: refused at once when its image is too large
 * (null), otherwise shown as "sending" from now; `written` when the engine
 * hands it to its connection at once. */
export function queueChat(
  host: Host,
  rid: string,
  text: string,
  options: { to?: string; attachment?: Attachment },
  written: boolean,
): OutgoingChat | null {
  const refused = refuseLargeAttachment(host.current(), options.attachment);
  if (refused) {
    host.set(refused);
    return null;
  }
  const item = outgoingChat(host.current(), rid, text, options, host.now(), written);
  host.set({ ...host.current(), outgoing: [...host.current().outgoing, item] });
  return item;
}

/** Takes an unconfirmed message out, to be sent again (null when it is gone). */
export function takeForRetry(host: Host, rid: string): OutgoingChat | null {
  const item = host.current().outgoing.find((o) => o.rid === rid);
  if (!item) return null;
  host.set(withoutOutgoing(host.current(), rid));
  return item;
}

/** Marks the messages that `which` picks (all unconfirmed ones by default) as failed. */
export function failOutgoing(state: EngineState, which: (o: OutgoingChat) => boolean = () => true): EngineState {
  if (!state.outgoing.some((o) => o.status === "sending" && which(o))) return state;
  return {
    ...state,
    outgoing: state.outgoing.map((o) => (o.status === "sending" && which(o) ? { ...o, status: "failed" as const } : o)),
  };
}

export function withoutOutgoing(state: EngineState, rid: string): EngineState {
  return { ...state, outgoing: state.outgoing.filter((o) => o.rid !== rid) };
}

/** Our own echo of a chat message confirms the message it answers: by its
 * `rid`, or — from a client that cannot carry one through (the desktop
 * app's native engine) — the oldest unconfirmed one with the same text and
 * recipient (the server echoes in the order it received). */
export function confirmOutgoing(
  state: EngineState,
  echo: { text: string; to?: string },
  rid: string | undefined,
): EngineState {
  const match = rid
    ? state.outgoing.find((o) => o.rid === rid)
    : state.outgoing.find((o) => o.text === echo.text && (o.to ?? undefined) === (echo.to ?? undefined));
  return match ? withoutOutgoing(state, match.rid) : state;
}
