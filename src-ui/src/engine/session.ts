// The room session as pure state transitions: a server message (or the
// clock) in, the next state out. No I/O here, so the whole of it is unit
// tested; `BrowserEngine` owns the sockets and calls these.

import type { Peer, ServerMessage } from "../protocol";
import { DEFAULT_PROCESSING, type ChatLine, type EngineState, type Prompt } from "./types";
import { appendChat, systemLine, withSystemLine } from "./lines";
import { confirmOutgoing } from "./outgoing";
import { settleRings, type RingStep } from "./ringing";

/** A typing indicator not refreshed for this long disappears (protocol: 6 s). */
export const TYPING_TTL_MS = 6000;

/** The reactions the server relays (docs/protocol.md, "Raised hands and reactions"). */
export const REACTIONS = ["\u{1F44D}", "\u{1F44F}", "\u{1F602}", "\u{1F62E}", "\u{2764}\u{FE0F}", "\u{1F389}"] as const;
/** How long a reaction stays on screen. */
export const REACTION_MS = 4000;

export function initialState(): EngineState {
  return {
    status: "idle",
    error: null,
    rooms: null,
    self: null,
    room: null,
    members: [],
    typing: {},
    chat: [],
    outgoing: [],
    unread: 0,
    firstUnread: null,
    call: null,
    inCall: false,
    prompt: null,
    outgoingRing: null,
    local: { audio: true, video: false, screen: false, stream: null },
    remote: {},
    stats: {},
    speaker: null,
    reactions: [],
    preview: null,
    talking: false,
    devices: {
      microphones: [],
      cameras: [],
      speakers: [],
      microphone: null,
      camera: null,
      speaker: null,
      processing: DEFAULT_PROCESSING,
    },
    limits: null,
  };
}

/** The display name of a member id (self included), or a placeholder. Two
 * members with the same name are told apart by the end of their ids
 * ("Sam ·x7Q"), which the server makes unique within the room. */
export function nameOf(state: EngineState, id: string): string {
  const everyone = state.self ? [state.self, ...state.members] : state.members;
  const peer = everyone.find((m) => m.id === id);
  if (!peer) return "someone";
  const twin = everyone.some((m) => m.id !== id && m.name === peer.name);
  return twin ? `${peer.name} ·${id.slice(-3)}` : peer.name;
}

function upsert(members: Peer[], peer: Peer): Peer[] {
  const i = members.findIndex((m) => m.id === peer.id);
  if (i < 0) return [...members, peer];
  const next = members.slice();
  next[i] = peer;
  return next;
}

/** Applies one server message. `now` is the local clock in ms. */
export function apply(state: EngineState, msg: ServerMessage, now: number): EngineState {
  return receive(state, msg, now).state;
}

/** Applies one server message, with what the engine must do about rings. */
export function receive(state: EngineState, msg: ServerMessage, now: number): RingStep {
  const line = (s: EngineState, text: string) => withSystemLine(s, text, now);
  return settleRings(state, applyMessage(state, msg, now), msg, now, line);
}

function applyMessage(state: EngineState, msg: ServerMessage, now: number): EngineState {
  switch (msg.type) {
    case "rooms":
      return { ...state, rooms: msg.rooms };
    case "joined": {
      const inCall = msg.self.in_call;
      const call = msg.room.call ? { startedAt: msg.room.call.started_at, members: msg.room.call.peers } : null;
      let next: EngineState = {
        ...state,
        status: "joined",
        error: null,
        self: msg.self,
        room: { name: msg.room.name, locked: msg.room.locked },
        members: msg.room.peers,
        limits: msg.limits,
        call,
        inCall,
      };
      if (!msg.resumed) {
        // A fresh membership: nothing from before is valid any more.
        next = { ...next, typing: {}, remote: {}, stats: {}, speaker: null, reactions: [] };
        next = appendChat(next, systemLine(`You joined ${msg.room.name}`, now), false);
      }
      return next;
    }
    case "peer_joined": {
      const next = { ...state, members: upsert(state.members, msg.peer) };
      return appendChat(next, systemLine(`${nameOf(next, msg.peer.id)} joined`, now), false);
    }
    case "peer_left": {
      const name = nameOf(state, msg.id);
      const typing = { ...state.typing };
      delete typing[msg.id];
      const remote = { ...state.remote };
      delete remote[msg.id];
      const stats = { ...state.stats };
      delete stats[msg.id];
      const why =
        msg.reason === "left"
          ? "left"
          : msg.reason === "timeout"
            ? "lost connection"
            : msg.reason === "kicked"
              ? "was removed"
              : "was disconnected";
      const next: EngineState = {
        ...state,
        members: state.members.filter((m) => m.id !== msg.id),
        reactions: state.reactions.filter((r) => r.from !== msg.id),
        typing,
        remote,
        stats,
        speaker: state.speaker === msg.id ? null : state.speaker,
        call: state.call ? { ...state.call, members: state.call.members.filter((id) => id !== msg.id) } : null,
      };
      return appendChat(next, systemLine(`${name} ${why}`, now), false);
    }
    case "peer_updated": {
      const peer = msg.peer;
      let call = state.call;
      if (call) {
        const listed = call.members.includes(peer.id);
        if (peer.in_call && !listed) call = { ...call, members: [...call.members, peer.id] };
        if (!peer.in_call && listed) call = { ...call, members: call.members.filter((id) => id !== peer.id) };
      }
      let remote = state.remote;
      if (!peer.in_call && remote[peer.id]) {
        remote = { ...remote };
        delete remote[peer.id];
      }
      const next = { ...state, members: upsert(state.members, peer), call, remote };
      const before = state.members.find((m) => m.id === peer.id);
      // A hand going up is said in the chat too (read out by screen readers).
      if (peer.hand && !before?.hand)
        return appendChat(next, systemLine(`${nameOf(next, peer.id)} raised a hand`, now), false);
      return next;
    }
    case "chat": {
      // A resume may bring again what a dying connection delivered (the
      // server resends what the old socket's TCP had not acknowledged). Ids
      // count from 1 in each life of a room: the sender and stamp tell.
      const again = (line: ChatLine) =>
        line.kind === "chat" && line.id === msg.id && line.from === msg.from && line.ts === msg.ts;
      if (state.chat.some(again)) return state;
      const own = msg.from === state.self?.id;
      // Our own echo confirms the message it answers (by its rid).
      if (own) state = confirmOutgoing(state, msg, (msg as { rid?: string }).rid);
      const line: ChatLine = {
        kind: "chat",
        id: msg.id,
        from: msg.from,
        fromName: nameOf(state, msg.from),
        to: msg.to,
        toName: msg.to ? nameOf(state, msg.to) : undefined,
        text: msg.text,
        ts: msg.ts,
        attachment: msg.attachment,
        own,
      };
      const typing = { ...state.typing };
      delete typing[msg.from];
      return appendChat({ ...state, typing }, line, !own);
    }
    case "typing": {
      const typing = { ...state.typing };
      if (msg.active) typing[msg.from] = now + TYPING_TTL_MS;
      else delete typing[msg.from];
      return { ...state, typing };
    }
    case "call_joined":
      return {
        ...state,
        inCall: true,
        call: {
          startedAt: state.call?.startedAt ?? now,
          members: [...msg.peers, ...(state.self ? [state.self.id] : [])],
        },
      };
    case "call_started": {
      const self = state.self?.id;
      const call = {
        startedAt: msg.started_at,
        members: state.call?.members.includes(msg.by) ? state.call.members : [msg.by],
      };
      let next: EngineState = { ...state, call };
      if (msg.by !== self && !state.inCall) {
        const prompt: Prompt = {
          kind: "call",
          by: msg.by,
          byName: nameOf(state, msg.by),
          video: msg.video,
          since: now,
        };
        next = { ...next, prompt };
      }
      return appendChat(
        next,
        systemLine(`${msg.by === self ? "You" : nameOf(state, msg.by)} started a call`, now),
        false,
      );
    }
    case "call_ended": {
      const next: EngineState = {
        ...state,
        call: null,
        inCall: false,
        remote: {},
        stats: {},
        speaker: null,
        reactions: [],
      };
      return appendChat(next, systemLine(`Call ended · ${formatDuration(msg.duration_ms)}`, now), false);
    }
    case "reaction":
      return withReaction(state, msg.from, msg.emoji, now);
    // Rings are settled in ./ringing.
    case "ring":
    case "ring_reply":
    case "signal":
    case "pong":
      return state;
    case "error":
      return { ...state, error: { code: msg.code, message: describeError(msg.code, msg.message) } };
    default:
      // A message type from a newer server: nothing to show.
      return state;
  }
}

/** Shows `from`'s reaction for REACTION_MS. One per member at a time (a new
 * one replaces the last), so a member sending a flood shows as one; only the
 * known set is drawn. */
export function withReaction(state: EngineState, from: string, emoji: string, now: number): EngineState {
  if (!(REACTIONS as readonly string[]).includes(emoji)) return state;
  const shown = { id: `${from}:${now}`, from, emoji, until: now + REACTION_MS };
  return { ...state, reactions: [...state.reactions.filter((r) => r.from !== from), shown] };
}

/** Our own hand, raised or lowered (the server tells only the others). */
export function withOwnHand(state: EngineState, raised: boolean): EngineState {
  return state.self ? { ...state, self: { ...state.self, hand: raised } } : state;
}

/** The chat read up to now: no unread count, no "new" marker. */
export function markedRead(state: EngineState): EngineState {
  return state.unread === 0 ? state : { ...state, unread: 0, firstUnread: null };
}

/** We left the call: out of it here at once (the server tells only the
 * others), so the room's call count is right without us. */
export function leftCall(state: EngineState): EngineState {
  const self = state.self?.id;
  const members = state.call?.members.filter((id) => id !== self) ?? [];
  const call = state.call && members.length > 0 ? { ...state.call, members } : null;
  // The server lowers a raised hand with the call.
  const next = withOwnHand(state, false);
  return { ...next, inCall: false, call, remote: {}, stats: {}, speaker: null, reactions: [] };
}

/** Drops typing indicators that were not refreshed in time. */
export function expireTyping(state: EngineState, now: number): EngineState {
  const live = Object.entries(state.typing).filter(([, until]) => until > now);
  if (live.length === Object.keys(state.typing).length) return state;
  return { ...state, typing: Object.fromEntries(live) };
}

/** Drops reactions whose time is up. */
export function expireReactions(state: EngineState, now: number): EngineState {
  const live = state.reactions.filter((r) => r.until > now);
  return live.length === state.reactions.length ? state : { ...state, reactions: live };
}

/** What the clock takes off the screen: typing indicators and reactions. */
export function expireShown(state: EngineState, now: number): EngineState {
  return expireReactions(expireTyping(state, now), now);
}

/** `1:05`, `1:02:03`. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mm = h > 0 ? String(m).padStart(2, "0") : String(m);
  return `${h > 0 ? `${h}:` : ""}${mm}:${String(s).padStart(2, "0")}`;
}

/** What to tell a person for each server error code. */
export function describeError(code: string, serverMessage: string): string {
  switch (code) {
    case "room_full":
      return "That room is full. Try another room or ask someone to leave.";
    case "bad_password":
      return "Wrong password for this room.";
    case "invalid_room":
      return "Room names are 1–64 characters, without control characters.";
    case "invalid_name":
      return "Names are 1–32 characters, without control characters.";
    case "server_full":
      return "The server is at capacity. Try again in a moment.";
    case "forbidden":
      return "This server needs an access token, or does not allow that.";
    case "rate_limited":
      // A join refused after too many wrong passwords says how long to wait.
      if (serverMessage.includes("try again"))
        return `${serverMessage[0]?.toUpperCase() ?? ""}${serverMessage.slice(1)}.`;
      // Rings and call starts have their own budget (they alert others).
      if (serverMessage.startsWith("too many rings")) return "Too many rings in a row: try again in a few seconds.";
      if (serverMessage.startsWith("too many calls started"))
        return "Too many calls started in a row: try again in a few seconds.";
      return "Slow down: you are sending too fast.";
    case "too_large":
      return "That message is too large for the server.";
    case "unsupported_version":
      return "This app is too old or too new for the server.";
    case "unknown_peer":
      return "That person is no longer in the room.";
    case "not_joined":
    case "already_joined":
    case "bad_message":
    case "unknown_type":
      // Hands and reactions are Huddle's additions; a plain v1 server lacks them.
      return "This server does not offer that (it is older than this app).";
    case "internal":
      return `Something went wrong (${code}): ${serverMessage}`;
    default:
      return serverMessage;
  }
}
