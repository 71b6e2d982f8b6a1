// The call gestures every engine shares: raising or lowering our hand and
// sending a reaction — the message to the server, and our own state at once
// (the server tells only the others). Engines own the I/O (./ringer's host).

import { withOwnHand, withReaction } from "./session";
import type { RingHost } from "./ringer";

type Host = Pick<RingHost, "current" | "set" | "send" | "now">;

export function setHand(host: Host, raised: boolean): void {
  host.send({ type: "hand", raised });
  host.set(withOwnHand(host.current(), raised));
}

export function react(host: Host, emoji: string): void {
  const self = host.current().self;
  if (!self) return;
  host.send({ type: "reaction", emoji });
  host.set(withReaction(host.current(), self.id, emoji, host.now()));
}
