import { describe, expect, it } from "vitest";
import {
  apply,
  expireShown,
  expireTyping,
  formatDuration,
  initialState,
  leftCall,
  markedRead,
  nameOf,
  REACTION_MS,
  TYPING_TTL_MS,
  withOwnHand,
  withReaction,
} from "../src/engine/session";
import type { Peer, ServerMessage } from "../src/protocol";
import { testPeer } from "./fakes";
import type { EngineState } from "../src/engine/types";

function joined(resumed = false, others: Peer[] = [testPeer("p_2", "Grace")]): ServerMessage {
  return {
    type: "joined",
    self: testPeer("p_1", "Ada"),
    room: { name: "standup", locked: false, peers: others, call: null },
    ice_servers: [],
    resume: "tok",
    resumed,
    limits: { max_frame_bytes: 1 << 20, max_chat_chars: 4000, max_peers: 8, max_attachment_bytes: 524288 },
  };
}

const run = (msgs: ServerMessage[], now = 1000, from: EngineState = initialState()) =>
  msgs.reduce((s, m) => apply(s, m, now), from);

describe("chat state", () => {
  it("labels room and direct messages, counts unread but not one's own", () => {
    const s = run([
      joined(),
      { type: "chat", id: "m_1", from: "p_2", text: "hi all", ts: 5 },
      { type: "chat", id: "m_2", from: "p_2", to: "p_1", text: "psst", ts: 6 },
      { type: "chat", id: "m_3", from: "p_1", to: "p_2", text: "yes?", ts: 7 },
    ]);
    const lines = s.chat.filter((l) => l.kind === "chat");
    expect(lines.map((l) => l.kind === "chat" && [l.fromName, l.toName ?? null, l.own])).toEqual([
      ["Grace", null, false],
      ["Grace", "Ada", false],
      ["Ada", "Grace", true],
    ]);
    expect(s.unread).toBe(2);
    expect(s.firstUnread).toBe("m_1");
    const read = markedRead(s);
    expect([read.unread, read.firstUnread, read.chat]).toEqual([0, null, s.chat]);
    expect(markedRead(read)).toBe(read);
  });

  it("writes join and leave lines and forgets a member that left", () => {
    const s = run([
      joined(),
      { type: "peer_joined", peer: testPeer("p_3", "Linus") },
      { type: "typing", from: "p_3", active: true },
      { type: "peer_left", id: "p_3", reason: "timeout" },
    ]);
    expect(s.chat.filter((l) => l.kind === "system").map((l) => l.kind === "system" && l.text)).toEqual([
      "You joined standup",
      "Linus joined",
      "Linus lost connection",
    ]);
    expect(s.members.map((m) => m.id)).toEqual(["p_2"]);
    expect(s.typing).toEqual({});
  });

  it("keeps the chat over a resumed join and starts afresh on a new one", () => {
    const before = run([joined(), { type: "chat", id: "m_1", from: "p_2", text: "hi", ts: 5 }]);
    expect(apply(before, joined(true), 2000).chat).toEqual(before.chat);
    const fresh = apply(before, joined(false), 2000);
    expect(fresh.chat.length).toBe(before.chat.length + 1); // a new "You joined" line, history kept on screen
    expect(fresh.remote).toEqual({});
  });

  it("shows a message a resume brings again once, and a new life's same id anew", () => {
    const hi = { type: "chat", id: "m_1", from: "p_2", text: "hi", ts: 5 } as const;
    const before = run([joined(), hi]);
    const resumed = run([joined(true), hi], 2000, before);
    expect(resumed.chat).toEqual(before.chat);
    expect(resumed.unread).toBe(1);
    // The room emptied and began again: its ids count from 1 again.
    const later = run([joined(false), { ...hi, from: "p_9", ts: 9000 }], 9000, before);
    expect(later.chat.filter((l) => l.kind === "chat").length).toBe(2);
  });
});

describe("typing", () => {
  it("expires an indicator not refreshed within 6 s", () => {
    let s = run([joined(), { type: "typing", from: "p_2", active: true }], 1000);
    expect(Object.keys(expireTyping(s, 1000 + TYPING_TTL_MS - 1).typing)).toEqual(["p_2"]);
    s = apply(s, { type: "typing", from: "p_2", active: true }, 4000); // refreshed
    expect(Object.keys(expireTyping(s, 1000 + TYPING_TTL_MS + 1).typing)).toEqual(["p_2"]);
    expect(expireTyping(s, 4000 + TYPING_TTL_MS).typing).toEqual({});
  });

  it("ends when the typist's message arrives or they stop", () => {
    const s = run([joined(), { type: "typing", from: "p_2", active: true }]);
    expect(apply(s, { type: "chat", id: "m", from: "p_2", text: "x", ts: 1 }, 1).typing).toEqual({});
    expect(apply(s, { type: "typing", from: "p_2", active: false }, 1).typing).toEqual({});
  });
});

describe("calls", () => {
  it("prompts members outside the call when it starts, not the starter", () => {
    const s = run([joined(), { type: "call_started", by: "p_2", video: true, started_at: 500 }]);
    expect(s.prompt).toEqual({ kind: "call", by: "p_2", byName: "Grace", video: true, since: 1000 });
    expect(s.call).toEqual({ startedAt: 500, members: ["p_2"] });
    const own = run([
      joined(),
      { type: "call_joined", peers: [] },
      { type: "call_started", by: "p_1", video: false, started_at: 9 },
    ]);
    expect(own.prompt).toBeNull();
    expect(own.inCall).toBe(true);
  });

  it("tracks who is in the call from peer updates and ends cleanly", () => {
    let s = run([
      joined(),
      { type: "call_joined", peers: [] },
      { type: "call_started", by: "p_1", video: true, started_at: 9 },
    ]);
    s = apply(s, { type: "peer_updated", peer: testPeer("p_2", "Grace", { in_call: true }) }, 10);
    expect(s.call?.members.sort()).toEqual(["p_1", "p_2"]);
    s = apply(s, { type: "call_ended", duration_ms: 65_000 }, 11);
    expect(s.call).toBeNull();
    expect(s.inCall).toBe(false);
    expect(s.chat.at(-1)).toMatchObject({ kind: "system", text: "Call ended · 1:05" });
  });

  it("shows a ring from a member and clears it if they leave", () => {
    let s = run([joined(), { type: "ring", from: "p_2", video: false }]);
    expect(s.prompt).toEqual({ kind: "ring", from: "p_2", fromName: "Grace", video: false, since: 1000 });
    s = apply(s, { type: "peer_left", id: "p_2", reason: "left" }, 5);
    expect(s.prompt).toBeNull();
  });
});

describe("names", () => {
  it("tells two members with the same name apart, and only then", () => {
    const s = run([joined(false, [testPeer("p_2", "Grace"), testPeer("p_3xyz", "Sam"), testPeer("p_4abc", "Sam")])]);
    expect(nameOf(s, "p_2")).toBe("Grace");
    expect(nameOf(s, "p_3xyz")).toBe("Sam ·xyz");
    expect(nameOf(s, "p_4abc")).toBe("Sam ·abc");
    const alone = apply(s, { type: "peer_left", id: "p_4abc", reason: "left" }, 2);
    expect(nameOf(alone, "p_3xyz")).toBe("Sam");
  });
});

describe("errors", () => {
  it("explains every join error in words", () => {
    for (const code of ["room_full", "bad_password", "server_full", "forbidden"] as const) {
      const s = apply(initialState(), { type: "error", code, message: "x" }, 0);
      expect(s.error?.code).toBe(code);
      expect(s.error?.message).not.toContain("x");
    }
  });
});

it("formats durations", () => {
  expect(formatDuration(0)).toBe("0:00");
  expect(formatDuration(65_000)).toBe("1:05");
  expect(formatDuration(3_723_000)).toBe("1:02:03");
});

describe("hands and reactions", () => {
  const grace = testPeer("p_2", "Grace");
  const linus = testPeer("p_3", "Linus");

  it("shows one reaction per member, only the known six, for REACTION_MS", () => {
    let s = run([joined(false, [grace, linus]), { type: "reaction", from: "p_2", emoji: "\u{1F44D}" }]);
    s = apply(s, { type: "reaction", from: "p_3", emoji: "\u{1F389}" }, 1500);
    // A second reaction from Grace replaces her first: a flood shows as one.
    s = apply(s, { type: "reaction", from: "p_2", emoji: "\u{1F602}" }, 2000);
    s = apply(s, { type: "reaction", from: "p_3", emoji: "<img src=x>" }, 2100);
    expect(s.reactions.map((r) => [r.from, r.emoji])).toEqual([
      ["p_3", "\u{1F389}"],
      ["p_2", "\u{1F602}"],
    ]);
    expect(expireShown(s, 1500 + REACTION_MS).reactions.map((r) => r.from)).toEqual(["p_2"]);
    expect(expireShown(s, 2000 + REACTION_MS).reactions).toEqual([]);
    // Ours shows at once; a member who leaves takes theirs along.
    s = withReaction(s, "p_1", "\u{2764}\u{FE0F}", 2200);
    s = apply(s, { type: "peer_left", id: "p_3", reason: "left" }, 2300);
    expect(s.reactions.map((r) => r.from)).toEqual(["p_2", "p_1"]);
  });

  it("says when a hand goes up, and lowers ours when we leave the call", () => {
    let s = run([joined(false, [grace]), { type: "peer_updated", peer: { ...grace, hand: true } }]);
    expect(s.members[0]?.hand).toBe(true);
    // Another update with the hand still up says nothing more.
    s = apply(
      s,
      { type: "peer_updated", peer: { ...grace, hand: true, media: { audio: false, video: false, screen: false } } },
      1200,
    );
    const said = s.chat.filter((l) => l.kind === "system" && l.text.includes("raised a hand"));
    expect(said.length).toBe(1);
    s = withOwnHand({ ...s, inCall: true, call: { startedAt: 0, members: ["p_1"] } }, true);
    expect(s.self?.hand).toBe(true);
    expect(leftCall(s).self?.hand).toBe(false);
  });

  it("ignores a message type it does not know", () => {
    const s = run([joined()]);
    expect(apply(s, { type: "from_the_future" } as unknown as ServerMessage, 1)).toBe(s);
  });
});
