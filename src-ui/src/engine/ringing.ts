// Ringing one member, on both sides, as pure transitions: the caller's
// "Calling Grace…" state and the callee's prompt. A ring is a 1:1 call: the
// caller is in the call from the first moment (protocol v1: `call_join`, then
// `ring`), so accepting joins the caller's call. Every ring ends, on both
// sides, by an answer, a cancel, either side leaving, or RING_TIMEOUT_MS;
// no prompt outlives what it asks about.
//
// The cancel is a `ring_reply` with `accept: false` from the caller to the
// callee (the server relays it like any `ring_reply`): a callee showing that
// caller's ring drops it. A caller left alone in the call leaves it.

import type { ClientMessage, ServerMessage } from "../protocol";
import type { EngineState } from "./types";

/** An unanswered ring ends on both sides after this long. */
export const RING_TIMEOUT_MS = 30_000;
/** A "started a call" prompt goes away after this long (the header still offers to join). */
export const CALL_PROMPT_MS = 30_000;

/** A `rate_limited` this soon after ringing refused the ring. */
const REFUSAL_WINDOW_MS = 5_000;

/** What the engine must do for a ring transition. */
export type RingEffect = { kind: "send"; message: ClientMessage } | { kind: "leave_call" };

export interface RingStep {
  state: EngineState;
  effects: RingEffect[];
}

/** Adds a system line to the chat. */
export type Line = (state: EngineState, text: string) => EngineState;

function nameIn(state: EngineState, id: string): string {
  return state.members.find((m) => m.id === id)?.name ?? "someone";
}

/** Whether anyone but us is in the call. */
function othersInCall(state: EngineState): boolean {
  const self = state.self?.id;
  return (state.call?.members ?? []).some((id) => id !== self);
}

/** The caller starts ringing `to` (the engine has sent `call_join` first). */
export function startRing(state: EngineState, to: string, video: boolean, now: number): RingStep {
  const ring = { to, toName: nameIn(state, to), video, since: now };
  return { state: { ...state, outgoingRing: ring }, effects: [{ kind: "send", message: { type: "ring", to, video } }] };
}

/** The caller gives up (Cancel, or no answer in time): the callee is told,
 * and a caller left alone in the call leaves it. */
export function stopRing(state: EngineState, line: Line, why: "cancelled" | "unanswered"): RingStep {
  const ring = state.outgoingRing;
  if (!ring) return { state, effects: [] };
  let next: EngineState = { ...state, outgoingRing: null };
  if (why === "unanswered") next = line(next, `${ring.toName} did not answer`);
  const effects: RingEffect[] = [{ kind: "send", message: { type: "ring_reply", to: ring.to, accept: false } }];
  if (next.inCall && !othersInCall(next)) effects.push({ kind: "leave_call" });
  return { state: next, effects };
}

/** The clock: rings and prompts that were not answered in time end. */
export function tickRings(state: EngineState, now: number, line: Line): RingStep {
  let step: RingStep = { state, effects: [] };
  if (state.outgoingRing && now - state.outgoingRing.since >= RING_TIMEOUT_MS)
    step = stopRing(state, line, "unanswered");
  const prompt = step.state.prompt;
  if (prompt && now - prompt.since >= (prompt.kind === "ring" ? RING_TIMEOUT_MS : CALL_PROMPT_MS)) {
    let next: EngineState = { ...step.state, prompt: null };
    if (prompt.kind === "ring") next = line(next, `Missed call from ${prompt.fromName}`);
    step = { state: next, effects: step.effects };
  }
  return step;
}

/** What a server message does to rings, after the session applied it
 * (`before` is the state the message arrived in). */
export function settleRings(
  before: EngineState,
  after: EngineState,
  msg: ServerMessage,
  now: number,
  line: Line,
): RingStep {
  let state = after;
  const effects: RingEffect[] = [];
  const prompt = state.prompt;
  const ring = state.outgoingRing;
  switch (msg.type) {
    case "ring": {
      // A ring from someone already in our call asks nothing.
      if (before.inCall && before.call?.members.includes(msg.from)) break;
      state = {
        ...state,
        prompt: { kind: "ring", from: msg.from, fromName: nameIn(state, msg.from), video: msg.video, since: now },
      };
      break;
    }
    case "ring_reply":
      if (ring && msg.from === ring.to) {
        if (!msg.accept) {
          state = line({ ...state, outgoingRing: null }, `${ring.toName} declined your call`);
          if (state.inCall && !othersInCall(state)) effects.push({ kind: "leave_call" });
        }
        // An acceptance is followed by their `call_join`: the ring ends when they are in.
      } else if (prompt?.kind === "ring" && msg.from === prompt.from && !msg.accept) {
        state = line({ ...state, prompt: null }, `Missed call from ${prompt.fromName}`);
      }
      break;
    case "call_joined":
      // We are in the call: nothing left to answer.
      if (prompt) state = { ...state, prompt: null };
      break;
    case "peer_updated":
      if (ring && msg.peer.id === ring.to && msg.peer.in_call) state = { ...state, outgoingRing: null };
      if (
        prompt?.kind === "ring" &&
        msg.peer.id === prompt.from &&
        !msg.peer.in_call &&
        before.call?.members.includes(msg.peer.id)
      ) {
        state = line({ ...state, prompt: null }, `Missed call from ${prompt.fromName}`);
      }
      break;
    case "peer_left":
      if (ring && msg.id === ring.to) {
        state = { ...state, outgoingRing: null };
        if (state.inCall && !othersInCall(state)) effects.push({ kind: "leave_call" });
      }
      if (prompt && (prompt.kind === "ring" ? prompt.from : prompt.by) === msg.id) state = { ...state, prompt: null };
      break;
    case "call_ended":
      if (prompt?.kind === "ring") state = line({ ...state, prompt: null }, `Missed call from ${prompt.fromName}`);
      else if (prompt) state = { ...state, prompt: null };
      if (ring) state = { ...state, outgoingRing: null };
      break;
    case "error":
      // The server refuses rings (and call starts) beyond its alert budget:
      // a refusal right after ringing is this ring's.
      if (ring && msg.code === "rate_limited" && now - ring.since < REFUSAL_WINDOW_MS) {
        state = line({ ...state, outgoingRing: null }, `${ring.toName} was not rung`);
        if (state.inCall && !othersInCall(state)) effects.push({ kind: "leave_call" });
      }
      break;
    case "joined":
      if (!msg.resumed) state = { ...state, prompt: null, outgoingRing: null };
      break;
    default:
      break;
  }
  return { state, effects };
}
