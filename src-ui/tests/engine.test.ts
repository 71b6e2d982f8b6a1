import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { audioConstraints, BrowserEngine } from "../src/engine/browser";
import { CONFIRM_MS } from "../src/engine/outgoing";
import { RESTART_AFTER_DISCONNECTED_MS } from "../src/engine/peer";
import {
  backoff,
  BACKOFF_MS,
  OPEN_TIMEOUT_MS,
  PING_INTERVAL_MS,
  PONG_TIMEOUT_MS,
  PROBE_TIMEOUT_MS,
} from "../src/engine/signaling";
import { FakePeerConnection, FakeSocket, testPeer } from "./fakes";

const joined = (resume: string, resumed: boolean) => ({
  type: "joined",
  self: testPeer("p_1", "Ada"),
  room: { name: "standup", locked: false, peers: [testPeer("p_2", "Grace")], call: null },
  ice_servers: [{ urls: ["stun:stun.example.org"] }],
  resume,
  resumed,
  limits: { max_frame_bytes: 1048576, max_chat_chars: 4000, max_peers: 8, max_attachment_bytes: 1000 },
});

let engine: BrowserEngine;
let connections: FakePeerConnection[] = [];

beforeEach(() => {
  vi.useFakeTimers();
  FakeSocket.all = [];
  connections = [];
  engine = new BrowserEngine("ws://huddle.test/ws", {
    createSocket: (url) => new FakeSocket(url) as unknown as WebSocket,
    createPeerConnection: (c) => {
      const pc = new FakePeerConnection(c);
      connections.push(pc);
      return pc as unknown as RTCPeerConnection;
    },
    mediaDevices: null,
    now: () => Date.now(),
  });
});

afterEach(() => {
  engine.dispose();
  vi.useRealTimers();
});

function joinStandup() {
  engine.join({ room: "standup", name: "Ada", password: "pw" });
  const socket = FakeSocket.last();
  socket.open();
  expect(socket.sentOfType("join")).toEqual([
    {
      type: "join",
      v: 1,
      room: "standup",
      name: "Ada",
      client: "browser",
      password: "pw",
      media: { audio: true, video: false, screen: false },
    },
  ]);
  socket.receive(joined("token-1", false));
  return socket;
}

describe("reconnect and resume", () => {
  it("keeps the room through a dropped socket and resumes with the last token", () => {
    const first = joinStandup();
    first.receive({ type: "chat", id: "m_1", from: "p_2", text: "hello", ts: 5 });
    expect(engine.getState().status).toBe("joined");

    first.drop(1006);
    expect(engine.getState().status).toBe("reconnecting");
    expect(engine.getState().chat.some((l) => l.kind === "chat" && l.text === "hello")).toBe(true);

    vi.advanceTimersByTime(BACKOFF_MS[0] * 1.2);
    const second = FakeSocket.last();
    expect(second).not.toBe(first);
    second.open();
    expect(second.sentOfType("join")[0]).toMatchObject({ room: "standup", resume: "token-1", password: "pw" });

    second.receive(joined("token-2", true));
    second.receive({ type: "chat", id: "m_2", from: "p_2", text: "queued while away", ts: 6 });
    const state = engine.getState();
    expect(state.status).toBe("joined");
    expect(state.chat.filter((l) => l.kind === "chat").map((l) => l.kind === "chat" && l.text)).toEqual([
      "hello",
      "queued while away",
    ]);

    // The next drop resumes with the fresh token: tokens are single-use.
    second.drop(1001);
    vi.advanceTimersByTime(BACKOFF_MS[0] * 1.2);
    FakeSocket.last().open();
    expect(FakeSocket.last().sentOfType("join")[0]).toMatchObject({ resume: "token-2" });
  });

  it("abandons a connection attempt that never opens, and tries again", () => {
    const first = joinStandup();
    first.drop(1006);
    vi.advanceTimersByTime(BACKOFF_MS[0] * 1.2);
    const hanging = FakeSocket.last();
    expect(hanging).not.toBe(first);
    vi.advanceTimersByTime(OPEN_TIMEOUT_MS);
    expect(hanging.readyState).toBe(3);
    vi.advanceTimersByTime(BACKOFF_MS[1] * 1.2);
    expect(FakeSocket.last()).not.toBe(hanging);
    expect(engine.getState().status).toBe("reconnecting");
  });

  it("backs off exponentially, within ±20 %", () => {
    expect(backoff(0, () => 0)).toBe(BACKOFF_MS[0] * 0.8);
    expect(backoff(1, () => 1)).toBe(BACKOFF_MS[1] * 1.2);
    expect(backoff(99, () => 0.5)).toBe(BACKOFF_MS[BACKOFF_MS.length - 1]);
  });

  it("does not retry after a policy close, and says so", () => {
    const socket = joinStandup();
    socket.drop(1008);
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.all.length).toBe(1);
    expect(engine.getState().status).toBe("offline");
    expect(engine.getState().error?.code).toBe("connection");
  });

  it("pings at the application level so the server does not close an idle browser", () => {
    const socket = joinStandup();
    vi.advanceTimersByTime(PING_INTERVAL_MS * 2 + 1);
    expect(socket.sentOfType("ping").length).toBe(2);
    expect(FakeSocket.last()).toBe(socket);
  });

  it("abandons a socket whose ping goes unanswered and resumes on a new one at once", () => {
    const first = joinStandup();
    first.dead = true;
    vi.advanceTimersByTime(PING_INTERVAL_MS);
    expect(first.sentOfType("ping").length).toBe(1);
    vi.advanceTimersByTime(PONG_TIMEOUT_MS - 1);
    expect(engine.getState().status).toBe("joined");
    vi.advanceTimersByTime(1);
    expect(engine.getState().status).toBe("reconnecting");
    // Not a polite close, which would wait on the dead peer: a new socket
    // on the next tick.
    vi.advanceTimersByTime(1);
    const second = FakeSocket.last();
    expect(second).not.toBe(first);
    second.open();
    expect(second.sentOfType("join")[0]).toMatchObject({ resume: "token-1" });
  });
});

/** Joined, in a call with p_2 (our offer sent on `socket`). */
async function inCallWithP2() {
  const socket = joinStandup();
  await engine.joinCall(false);
  socket.receive({ type: "call_joined", peers: ["p_2"] });
  await vi.advanceTimersByTimeAsync(10);
  return { socket, offer: socket.sentOfType("signal")[0] };
}

/** Chromium says the path to p_2 is down. */
function pathDown() {
  const pc = connections[0];
  pc.connectionState = "disconnected";
  pc.onconnectionstatechange?.();
}

describe("a network change under a call", () => {
  it("a path going down asks the server at once; a dead socket is replaced and the lost offer sent again", async () => {
    const { socket: first, offer } = await inCallWithP2();
    expect(offer).toMatchObject({ to: "p_2", data: { sdp: { type: "offer" } } });
    // The offer never arrived (the socket died with the old address) and
    // the path is down: we are p_1, the impolite side, so we act first.
    first.dead = true;
    pathDown();
    await vi.advanceTimersByTimeAsync(RESTART_AFTER_DISCONNECTED_MS);
    expect(first.sentOfType("ping").length).toBe(1);
    await vi.advanceTimersByTimeAsync(PROBE_TIMEOUT_MS + 1);
    expect(engine.getState().status).toBe("reconnecting");
    // The probe's spare, still connecting, is the next socket: no third.
    const second = FakeSocket.last();
    expect(second).not.toBe(first);
    expect(FakeSocket.all).toHaveLength(2);
    second.open();
    second.receive(joined("token-2", true));
    expect(second.sentOfType("signal")).toEqual([offer]);
  });

  it("a socket that answers the probe is kept", async () => {
    const { socket } = await inCallWithP2();
    pathDown();
    await vi.advanceTimersByTimeAsync(RESTART_AFTER_DISCONNECTED_MS);
    expect(socket.sentOfType("ping").length).toBe(1);
    // The probe's spare, opened beside it, is closed unused once the
    // socket answers.
    const spare = FakeSocket.last();
    expect(spare).not.toBe(socket);
    await vi.advanceTimersByTimeAsync(PROBE_TIMEOUT_MS * 2);
    expect(spare.readyState).toBe(3);
    expect(spare.sent).toEqual([]);
    expect(FakeSocket.all).toHaveLength(2);
    expect(socket.readyState).toBe(1);
    engine.sendChat("still here");
    expect(socket.sentOfType("chat")).toHaveLength(1);
    expect(engine.getState().status).toBe("joined");
  });

  it("a spare that opens before the old socket answers takes over at once, and the lost offer goes again", async () => {
    const { socket: first, offer } = await inCallWithP2();
    first.dead = true;
    pathDown();
    // The probe goes at once; from the machine's new address, the spare
    // connects well within its deadline.
    await vi.advanceTimersByTimeAsync(PROBE_TIMEOUT_MS / 4);
    expect(first.sentOfType("ping").length).toBe(1);
    const spare = FakeSocket.last();
    expect(spare).not.toBe(first);
    spare.open();
    expect(spare.sentOfType("join")[0]).toMatchObject({ resume: "token-1" });
    // Never "reconnecting": the call's status did not flicker.
    expect(engine.getState().status).toBe("joined");
    spare.receive(joined("token-2", true));
    expect(spare.sentOfType("signal")).toEqual([offer]);
    expect(first.readyState).toBe(3);
    // The old socket's probe deadline passes without another socket.
    await vi.advanceTimersByTimeAsync(PROBE_TIMEOUT_MS * 2);
    expect(FakeSocket.all).toHaveLength(2);
    expect(engine.getState().status).toBe("joined");
  });
});

describe("a spare socket taking over from a slow one", () => {
  it("what the old socket still brings before the server answers on the new one is not lost", async () => {
    const { socket: first } = await inCallWithP2();
    first.dead = true; // slow: the probe's answer has not come yet
    pathDown();
    await vi.advanceTimersByTimeAsync(PROBE_TIMEOUT_MS / 4);
    const spare = FakeSocket.last();
    spare.open();
    expect(spare.sentOfType("join")).toHaveLength(1);
    // A message the server wrote to the old socket before the switch.
    first.dead = false;
    first.receive({ type: "chat", id: "m_7", from: "p_2", text: "sent before the switch", ts: 7 });
    expect(engine.getState().chat.some((l) => l.kind === "chat" && l.text === "sent before the switch")).toBe(true);
    expect(first.readyState).toBe(1);
    spare.receive(joined("token-2", true));
    expect(first.readyState).toBe(3);
    expect(engine.getState().status).toBe("joined");
  });
});

describe("access tokens", () => {
  it("a page opened with a token gives it in join and rooms", () => {
    const tokened = new BrowserEngine(
      "ws://huddle.test/ws",
      {
        createSocket: (url) => new FakeSocket(url) as unknown as WebSocket,
        createPeerConnection: (c) => new FakePeerConnection(c) as unknown as RTCPeerConnection,
        mediaDevices: null,
        now: () => Date.now(),
      },
      "tok3n",
    );
    tokened.watchRooms(true);
    const socket = FakeSocket.last();
    socket.open();
    tokened.join({ room: "standup", name: "Ada" });
    expect(socket.sentOfType("rooms")[0]).toMatchObject({ watch: true, token: "tok3n" });
    expect(socket.sentOfType("join")[0]).toMatchObject({ room: "standup", token: "tok3n" });
    tokened.dispose();
  });
});

describe("chat while the connection is down", () => {
  it("a message typed while reconnecting waits, goes out on resume, and is confirmed by its echo", () => {
    const first = joinStandup();
    first.drop(1006);
    expect(engine.getState().status).toBe("reconnecting");
    engine.sendChat("typed while away");
    expect(engine.getState().outgoing).toMatchObject([{ text: "typed while away", status: "sending" }]);
    vi.advanceTimersByTime(BACKOFF_MS[0] * 1.2);
    const second = FakeSocket.last();
    second.open();
    expect(second.sentOfType("chat")).toEqual([]);
    second.receive(joined("token-2", true));
    const [sent] = second.sentOfType("chat");
    expect(sent).toMatchObject({ type: "chat", text: "typed while away" });
    const rid = (sent as { rid: string }).rid;
    second.receive({ type: "chat", id: "m_9", from: "p_1", text: "typed while away", ts: 9, rid });
    expect(engine.getState().outgoing).toEqual([]);
    expect(engine.getState().chat.some((l) => l.kind === "chat" && l.text === "typed while away")).toBe(true);
  });

  it("one written just before the drop and never confirmed is offered for retry, not resent twice", () => {
    const first = joinStandup();
    engine.sendChat("lost in flight");
    expect(first.sentOfType("chat")).toHaveLength(1);
    first.drop(1006);
    vi.advanceTimersByTime(BACKOFF_MS[0] * 1.2);
    const second = FakeSocket.last();
    second.open();
    second.receive(joined("token-2", true));
    expect(second.sentOfType("chat")).toEqual([]);
    vi.advanceTimersByTime(CONFIRM_MS + 1);
    const [item] = engine.getState().outgoing;
    expect(item).toMatchObject({ text: "lost in flight", status: "failed" });
    engine.retryChat(item.rid);
    expect(second.sentOfType("chat")).toMatchObject([{ text: "lost in flight" }]);
    expect(engine.getState().outgoing).toMatchObject([{ status: "sending" }]);
  });
});

describe("join errors", () => {
  it("returns to the lobby with the reason on a wrong password", () => {
    engine.join({ room: "standup", name: "Ada", password: "nope" });
    const socket = FakeSocket.last();
    socket.open();
    socket.receive({ type: "error", code: "bad_password", message: "wrong password" });
    const state = engine.getState();
    expect(state.status).toBe("idle");
    expect(state.error).toEqual({ code: "bad_password", message: "Wrong password for this room." });
  });
});

describe("calls", () => {
  it("offers to every member already in the call, and only to them", async () => {
    const socket = joinStandup();
    await engine.joinCall(false);
    expect(socket.sentOfType("call_join")).toEqual([{ type: "call_join", video: false }]);
    socket.receive({ type: "call_joined", peers: ["p_2"] });
    await vi.advanceTimersByTimeAsync(10);
    const offers = socket.sentOfType("signal");
    expect(offers.length).toBeGreaterThan(0);
    expect(offers.every((m) => m.to === "p_2")).toBe(true);
    expect(offers[0]).toMatchObject({ data: { sdp: { type: "offer" } } });
  });

  it("ignores signals from members when not in a call", () => {
    const socket = joinStandup();
    socket.receive({ type: "signal", from: "p_2", data: { sdp: { type: "offer", sdp: "x m=audio" } } });
    expect(engine.getState().remote).toEqual({});
    expect(socket.sentOfType("signal")).toEqual([]);
  });

  it("ignores an offer from a member who is not in our call, while we are in it", async () => {
    const socket = joinStandup();
    await engine.joinCall(false);
    socket.receive({ type: "call_joined", peers: [] });
    socket.receive({ type: "call_started", by: "p_1", video: false, started_at: 1 });
    socket.receive({ type: "signal", from: "p_2", data: { sdp: { type: "offer", sdp: "x m=audio" } } });
    await vi.advanceTimersByTimeAsync(10);
    expect(engine.getState().remote).toEqual({});
    expect(socket.sentOfType("signal")).toEqual([]);
  });

  it("answers a call member, and drops the link and its offers once it leaves the call", async () => {
    const socket = joinStandup();
    await engine.joinCall(false);
    socket.receive({ type: "call_joined", peers: [] });
    socket.receive({ type: "call_started", by: "p_1", video: false, started_at: 1 });
    socket.receive({ type: "peer_updated", peer: { ...testPeer("p_2", "Grace"), in_call: true } });
    socket.receive({ type: "signal", from: "p_2", data: { sdp: { type: "offer", sdp: "x m=audio" } } });
    await vi.advanceTimersByTimeAsync(10);
    expect(Object.keys(engine.getState().remote)).toEqual(["p_2"]);
    expect(
      socket
        .sentOfType("signal")
        .some((m) => m.to === "p_2" && (m.data as { sdp?: { type: string } }).sdp?.type === "answer"),
    ).toBe(true);

    socket.receive({ type: "peer_updated", peer: { ...testPeer("p_2", "Grace"), in_call: false } });
    const sent = socket.sentOfType("signal").length;
    socket.receive({ type: "signal", from: "p_2", data: { sdp: { type: "offer", sdp: "x m=audio" } } });
    await vi.advanceTimersByTimeAsync(10);
    expect(engine.getState().remote).toEqual({});
    expect(socket.sentOfType("signal").length).toBe(sent);
  });

  it("refuses an attachment over the server's limit before sending", () => {
    const socket = joinStandup();
    engine.sendChat("", { attachment: { mime: "image/png", name: "big.png", data: "A".repeat(4000) } });
    expect(socket.sentOfType("chat")).toEqual([]);
    expect(engine.getState().error?.code).toBe("attachment");
  });
});

describe("audioConstraints", () => {
  it("asks the browser for the processing chosen, on the device chosen", () => {
    const processing = { echoCancellation: true, noiseSuppression: false, autoGainControl: true };
    expect(audioConstraints(null, processing)).toEqual(processing);
    expect(audioConstraints("mic-2", processing)).toEqual({ deviceId: { exact: "mic-2" }, ...processing });
  });
});
