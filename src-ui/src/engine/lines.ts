// The chat view's lines: appending with the window of MAX_CHAT_LINES and the
// unread count, and the room's own "system" lines ("Grace joined").

import type { ChatLine, EngineState } from "./types";

/** The most chat lines kept; older ones scroll away. */
export const MAX_CHAT_LINES = 500;

let systemLineSeq = 0;

export function systemLine(text: string, ts: number): ChatLine {
  systemLineSeq += 1;
  return { kind: "system", id: `sys_${systemLineSeq}`, text, ts };
}

export function appendChat(state: EngineState, line: ChatLine, countsUnread: boolean): EngineState {
  const chat = state.chat.length >= MAX_CHAT_LINES ? state.chat.slice(-MAX_CHAT_LINES + 1) : state.chat.slice();
  chat.push(line);
  if (!countsUnread) return { ...state, chat };
  return { ...state, chat, unread: state.unread + 1, firstUnread: state.firstUnread ?? line.id };
}

/** `state` with a system line saying `text`. */
export function withSystemLine(state: EngineState, text: string, now: number): EngineState {
  return appendChat(state, systemLine(text, now), false);
}
