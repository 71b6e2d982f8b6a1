import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BrowserEngine, type BrowserEnvironment } from "../src/engine/browser";
import { KEEP_MS, keepMembership, takeMembership, type TabStore } from "../src/engine/reload";
import { FakePeerConnection, FakeSocket, testPeer } from "./fakes";

class MemoryStore implements TabStore {
  items = new Map<string, string>();
  getItem(key: string) {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string) {
    this.items.set(key, value);
  }
  removeItem(key: string) {
    this.items.delete(key);
  }
}

const SERVER = "ws://huddle.test/ws";
const kept = { server: SERVER, room: "standup", name: "Ada", resume: "token-1", call: { video: true }, keptAt: 1_000 };

describe("what a tab keeps across a reload", () => {
  it("is taken back once, by the same server, while it is fresh", () => {
    const store = new MemoryStore();
    keepMembership(store, kept);
    expect(takeMembership(store, SERVER, 1_000 + KEEP_MS - 1)).toEqual(kept);
    expect(takeMembership(store, SERVER, 1_000 + 10)).toBeNull();
  });

  it("is not taken when too old, for another server, or unreadable", () => {
    const store = new MemoryStore();
    keepMembership(store, kept);
    expect(takeMembership(store, SERVER, 1_000 + KEEP_MS)).toBeNull();
    keepMembership(store, kept);
    expect(takeMembership(store, "ws://elsewhere.test/ws", 1_500)).toBeNull();
    store.setItem("huddle.membership", "{not json");
    expect(takeMembership(store, SERVER, 1_500)).toBeNull();
    store.setItem("huddle.membership", JSON.stringify({ ...kept, resume: 7 }));
    expect(takeMembership(store, SERVER, 1_500)).toBeNull();
  });
});

const joined = (resume: string, resumed: boolean, inCall: boolean) => ({
  type: "joined",
  self: testPeer("p_1", "Ada", { in_call: inCall }),
  room: {
    name: "standup",
    locked: false,
    peers: [testPeer("p_2", "Grace", { in_call: inCall })],
    call: inCall ? { started_at: 1, peers: ["p_1", "p_2"] } : null,
  },
  ice_servers: [],
  resume,
  resumed,
  limits: { max_frame_bytes: 1048576, max_chat_chars: 4000, max_peers: 8, max_attachment_bytes: 1000 },
});

describe("a reload", () => {
  let store: MemoryStore;
  let env: BrowserEnvironment;
  const engines: BrowserEngine[] = [];
  const engine = () => {
    const e = new BrowserEngine(SERVER, env);
    engines.push(e);
    return e;
  };

  beforeEach(() => {
    vi.useFakeTimers();
    FakeSocket.all = [];
    store = new MemoryStore();
    env = {
      createSocket: (url) => new FakeSocket(url) as unknown as WebSocket,
      createPeerConnection: (c) => new FakePeerConnection(c) as unknown as RTCPeerConnection,
      mediaDevices: null,
      now: () => Date.now(),
      tabStore: store,
    };
  });

  afterEach(() => {
    for (const e of engines.splice(0)) e.dispose();
    vi.useRealTimers();
  });

  it("comes back as the same member with the kept token, without a leave", () => {
    const before = engine();
    before.join({ room: "standup", name: "Ada", password: "secret" });
    const first = FakeSocket.last();
    first.open();
    first.receive(joined("token-1", false, false));
    before.keepForReload();
    expect(first.sentOfType("leave")).toEqual([]);
    expect(store.items.get("huddle.membership")).not.toContain("secret");

    const after = engine();
    expect(after.resumeAfterReload()).toBe(true);
    const second = FakeSocket.last();
    second.open();
    expect(second.sentOfType("join")[0]).toMatchObject({ room: "standup", name: "Ada", resume: "token-1" });
    expect(second.sentOfType("join")[0]).not.toHaveProperty("password");
    second.receive(joined("token-2", true, false));
    expect(after.getState().status).toBe("joined");
    // Taken once: another reload without a page in between finds nothing.
    expect(engine().resumeAfterReload()).toBe(false);
  });

  it("rejoins the call it was in: leaves the server's record of it first, then joins afresh", async () => {
    keepMembership(store, { ...kept, keptAt: Date.now() });
    const after = engine();
    after.resumeAfterReload();
    const socket = FakeSocket.last();
    socket.open();
    socket.receive(joined("token-2", true, true));
    await vi.waitFor(() => expect(socket.sentOfType("call_join").length).toBe(1));
    const types = socket.sent.map((m) => (m as { type: string }).type);
    expect(types.indexOf("call_leave")).toBeLessThan(types.indexOf("call_join"));
  });

  it("that finds its place expired in a locked room goes back to the lobby, saying so", () => {
    keepMembership(store, { ...kept, keptAt: Date.now() });
    const after = engine();
    after.resumeAfterReload();
    const socket = FakeSocket.last();
    socket.open();
    socket.receive({ type: "error", code: "bad_password", message: "wrong password" });
    expect(after.getState().status).toBe("idle");
    expect(after.getState().error?.message).toMatch(/expired while the page reloaded/);
  });

  it("comes back only on a reload: another navigation in the tab starts afresh, and drops what was kept", () => {
    keepMembership(store, { ...kept, keptAt: Date.now() });
    expect(engine().resumeAfterReload(false)).toBe(false);
    expect(store.items.size).toBe(0);
    expect(FakeSocket.all.length).toBe(0);
  });

  it("keeps nothing when not in a room", () => {
    engine().keepForReload();
    expect(store.items.size).toBe(0);
  });
});
