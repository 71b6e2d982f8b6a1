// The ring actions every engine shares: ringing, cancelling, answering, and
// carrying out what ./ringing's transitions ask (a `ring_reply` to send, a
// call to leave). Engines own the I/O; this only calls back into them.

import type { ClientMessage, ServerMessage } from "../protocol";
import { receive } from "./session";
import { startRing, stopRing, tickRings, type RingEffect, type RingStep } from "./ringing";
import { withSystemLine } from "./lines";
import type { EngineState } from "./types";

/** What a `Ringer` needs from its engine. */
export interface RingHost {
  current(): EngineState;
  set(state: EngineState): void;
  send(message: ClientMessage): void;
  joinCall(video: boolean): Promise<void>;
  leaveCall(): void;
  now(): number;
}

export class Ringer {
  constructor(private readonly host: RingHost) {}

  private line = (state: EngineState, text: string) => withSystemLine(state, text, this.host.now());

  private take(step: RingStep): void {
    this.host.set(step.state);
    for (const effect of step.effects) this.run(effect);
  }

  private run(effect: RingEffect): void {
    if (effect.kind === "send") this.host.send(effect.message);
    else this.host.leaveCall();
  }

  /** Applies a server message (the session's transitions, then the rings'). */
  receive(msg: ServerMessage): void {
    this.take(receive(this.host.current(), msg, this.host.now()));
  }

  /** Once a second: unanswered rings and prompts end. */
  tick(): void {
    this.take(tickRings(this.host.current(), this.host.now(), this.line));
  }

  /** Rings `to`: in the call first (starting it if need be), then the ring. One ring at a time. */
  async ring(to: string, video: boolean): Promise<void> {
    const state = this.host.current();
    if (state.outgoingRing || !state.members.some((m) => m.id === to)) return;
    if (!state.inCall) await this.host.joinCall(video);
    this.take(startRing(this.host.current(), to, video, this.host.now()));
  }

  cancel(): void {
    this.take(stopRing(this.host.current(), this.line, "cancelled"));
  }

  /** Leaving the call ends our ring too (the callee is told). */
  leavingCall(): void {
    const ring = this.host.current().outgoingRing;
    if (!ring) return;
    this.host.send({ type: "ring_reply", to: ring.to, accept: false });
    this.host.set({ ...this.host.current(), outgoingRing: null });
  }

  /** Answers the prompt: a ring is replied to; accepting joins the call. */
  async answer(accept: boolean): Promise<void> {
    const prompt = this.host.current().prompt;
    if (!prompt) return;
    this.host.set({ ...this.host.current(), prompt: null });
    if (prompt.kind === "ring") this.host.send({ type: "ring_reply", to: prompt.from, accept });
    if (accept && !this.host.current().inCall) await this.host.joinCall(prompt.video);
  }
}
