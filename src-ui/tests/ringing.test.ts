import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BrowserEngine } from "../src/engine/browser";
import { RING_TIMEOUT_MS } from "../src/engine/ringing";
import type { EngineState } from "../src/engine/types";
import { FakePeerConnection, FakeSocket, testPeer } from "./fakes";

// Both sides of a ring, through the browser engine over a fake socket: what
// each sends, what each shows, and that every ring ends.

const joined = (self: [string, string], other: [string, string]) => ({
  type: "joined",
  self: testPeer(...self),
  room: { name: "standup", locked: false, peers: [testPeer(...other)], call: null },
  ice_servers: [],
  resume: "tok",
  resumed: false,
  limits: { max_frame_bytes: 1048576, max_chat_chars: 4000, max_peers: 8, max_attachment_bytes: 1000 },
});

let engine: BrowserEngine;
let socket: FakeSocket;

function start(self: [string, string], other: [string, string]) {
  engine = new BrowserEngine("ws://huddle.test/ws", {
    createSocket: (url) => new FakeSocket(url) as unknown as WebSocket,
    createPeerConnection: (c) => new FakePeerConnection(c) as unknown as RTCPeerConnection,
    mediaDevices: null,
    now: () => Date.now(),
  });
  engine.join({ room: "standup", name: self[1] });
  socket = FakeSocket.last();
  socket.open();
  socket.receive(joined(self, other));
}

const state = (): EngineState => engine.getState();
const lines = () => state().chat.flatMap((l) => (l.kind === "system" ? [l.text] : []));
const sentTypes = () => socket.sent.map((m) => m.type).filter((t) => t !== "join" && t !== "media" && t !== "ping");

beforeEach(() => {
  vi.useFakeTimers();
  FakeSocket.all = [];
});

afterEach(() => {
  engine.dispose();
  vi.useRealTimers();
});

describe("the caller", () => {
  beforeEach(async () => {
    start(["p_1", "Ada"], ["p_2", "Grace"]);
    await engine.ring("p_2", true);
    // The server puts us in the call, which starts with us.
    socket.receive({ type: "call_joined", peers: [] });
    socket.receive({ type: "call_started", by: "p_1", video: true, started_at: Date.now() });
  });

  it("joins the call before ringing, and shows whom it calls", () => {
    expect(sentTypes()).toEqual(["call_join", "ring"]);
    expect(socket.sentOfType("ring")[0]).toMatchObject({ to: "p_2", video: true });
    expect(state().inCall).toBe(true);
    expect(state().outgoingRing).toMatchObject({ to: "p_2", toName: "Grace" });
    expect(state().prompt).toBeNull();
  });

  it("stops ringing when the callee is in the call, and stays in it", () => {
    socket.receive({ type: "ring_reply", from: "p_2", accept: true });
    expect(state().outgoingRing).not.toBeNull(); // until they are in
    socket.receive({ type: "peer_updated", peer: testPeer("p_2", "Grace", { in_call: true }) });
    expect(state().outgoingRing).toBeNull();
    expect(state().inCall).toBe(true);
    expect(state().call?.members.sort()).toEqual(["p_1", "p_2"]);
    expect(state().prompt).toBeNull();
    expect(sentTypes()).toEqual(["call_join", "ring"]);
  });

  it("leaves the call it is alone in when the callee declines", () => {
    socket.receive({ type: "ring_reply", from: "p_2", accept: false });
    expect(state().outgoingRing).toBeNull();
    expect(state().inCall).toBe(false);
    expect(sentTypes()).toEqual(["call_join", "ring", "call_leave"]);
    expect(lines()).toContain("Grace declined your call");
  });

  it("cancels: the callee is told and the caller leaves", () => {
    engine.cancelRing();
    expect(sentTypes()).toEqual(["call_join", "ring", "ring_reply", "call_leave"]);
    expect(socket.sentOfType("ring_reply")[0]).toMatchObject({ to: "p_2", accept: false });
    expect(state().outgoingRing).toBeNull();
    expect(state().inCall).toBe(false);
    expect(state().call).toBeNull();
  });

  it("gives up after 30 s without an answer", () => {
    vi.advanceTimersByTime(RING_TIMEOUT_MS - 1000);
    expect(state().outgoingRing).not.toBeNull();
    vi.advanceTimersByTime(1000);
    expect(state().outgoingRing).toBeNull();
    expect(state().inCall).toBe(false);
    expect(sentTypes()).toEqual(["call_join", "ring", "ring_reply", "call_leave"]);
    expect(lines()).toContain("Grace did not answer");
  });

  it("ends the ring when the callee leaves the room", () => {
    socket.receive({ type: "peer_left", id: "p_2", reason: "left" });
    expect(state().outgoingRing).toBeNull();
    expect(state().inCall).toBe(false);
  });

  it("ends the ring when leaving the call, telling the callee", () => {
    engine.leaveCall();
    expect(state().outgoingRing).toBeNull();
    expect(sentTypes()).toEqual(["call_join", "ring", "ring_reply", "call_leave"]);
  });

  it("says so when the server refuses the ring, and leaves the call", () => {
    socket.receive({
      type: "error",
      code: "rate_limited",
      message: "too many calls started: at most 3 in a row, then one every 10 s",
    });
    socket.receive({
      type: "error",
      code: "rate_limited",
      message: "too many rings: at most 3 in a row, then one every 10 s",
    });
    expect(state().outgoingRing).toBeNull();
    expect(state().inCall).toBe(false);
    expect(state().error?.message).toContain("Too many rings");
    expect(lines()).toContain("Grace was not rung");
  });

  it("rings one member at a time", async () => {
    await engine.ring("p_2", true);
    expect(socket.sentOfType("ring").length).toBe(1);
  });
});

describe("the callee", () => {
  beforeEach(() => {
    start(["p_2", "Grace"], ["p_1", "Ada"]);
    // Ada joins the call (it starts with her), then rings.
    socket.receive({ type: "call_started", by: "p_1", video: true, started_at: Date.now() });
    socket.receive({ type: "ring", from: "p_1", video: true });
  });

  it("is asked who calls, once", () => {
    expect(state().prompt).toMatchObject({ kind: "ring", from: "p_1", fromName: "Ada", video: true });
  });

  it("accepting joins the caller's call; no prompt stays", async () => {
    await engine.answer(true);
    expect(sentTypes()).toEqual(["ring_reply", "call_join"]);
    expect(socket.sentOfType("ring_reply")[0]).toMatchObject({ to: "p_1", accept: true });
    socket.receive({ type: "call_joined", peers: ["p_1"] });
    expect(state().prompt).toBeNull();
    expect(state().call?.members.sort()).toEqual(["p_1", "p_2"]);
  });

  it("declining tells the caller and stays out", async () => {
    await engine.answer(false);
    expect(sentTypes()).toEqual(["ring_reply"]);
    expect(socket.sentOfType("ring_reply")[0]).toMatchObject({ to: "p_1", accept: false });
    expect(state().prompt).toBeNull();
    expect(state().inCall).toBe(false);
  });

  it("drops the prompt when the caller cancels", () => {
    socket.receive({ type: "ring_reply", from: "p_1", accept: false });
    expect(state().prompt).toBeNull();
    expect(lines()).toContain("Missed call from Ada");
  });

  it("drops the prompt when the caller leaves the call", () => {
    socket.receive({ type: "peer_updated", peer: testPeer("p_1", "Ada", { in_call: false }) });
    socket.receive({ type: "call_ended", duration_ms: 4000 });
    expect(state().prompt).toBeNull();
    expect(lines().filter((l) => l === "Missed call from Ada")).toHaveLength(1);
  });

  it("drops the prompt after 30 s", () => {
    vi.advanceTimersByTime(RING_TIMEOUT_MS);
    expect(state().prompt).toBeNull();
    expect(lines()).toContain("Missed call from Ada");
    expect(sentTypes()).toEqual([]);
  });

  it("drops the prompt when joining the call from the header", async () => {
    await engine.joinCall(true);
    socket.receive({ type: "call_joined", peers: ["p_1"] });
    expect(state().prompt).toBeNull();
  });
});

describe("a call started in the room", () => {
  beforeEach(() => {
    start(["p_2", "Grace"], ["p_1", "Ada"]);
    socket.receive({ type: "call_started", by: "p_1", video: false, started_at: Date.now() });
  });

  it("asks, and the question goes away on joining, and stays away after leaving", async () => {
    expect(state().prompt).toMatchObject({ kind: "call", by: "p_1" });
    await engine.joinCall(false);
    socket.receive({ type: "call_joined", peers: ["p_1"] });
    expect(state().prompt).toBeNull();
    engine.leaveCall();
    expect(state().prompt).toBeNull();
    // The count of the call we left is the others only.
    expect(state().call?.members).toEqual(["p_1"]);
  });

  it("stops asking after 30 s; the header still offers to join", () => {
    vi.advanceTimersByTime(RING_TIMEOUT_MS);
    expect(state().prompt).toBeNull();
    expect(state().call?.members).toEqual(["p_1"]);
  });
});
