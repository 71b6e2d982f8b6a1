import { afterEach, describe, expect, it, vi } from "vitest";
import {
  OFFER_RESEND_MS,
  PeerLink,
  POLITE_RESTART_AFTER_MS,
  POLITE_RESTART_AFTER_RESYNC_MS,
  RESTART_AFTER_DISCONNECTED_MS,
  STALL_MS,
  withoutCandidates,
} from "../src/engine/peer";
import type { SignalData } from "../src/protocol";
import { FakePeerConnection, settle } from "./fakes";

/** Two links wired to each other through an asynchronous "server". */
function pair(
  aInitiator: boolean,
  bInitiator: boolean,
  ids = ["p_1", "p_2"],
  lose: (entry: string) => boolean = () => false,
) {
  const links: Record<string, PeerLink> = {};
  const log: string[] = [];
  const lost: string[] = [];
  const signals: { entry: string; data: SignalData }[] = [];
  const make = (self: string, remote: string, initiator: boolean) =>
    new PeerLink(
      {
        selfId: self,
        remoteId: remote,
        initiator,
        iceServers: [],
        createPeerConnection: (c) => new FakePeerConnection(c) as unknown as RTCPeerConnection,
        send: (data: SignalData) => {
          const entry = `${self}→${remote} ${"sdp" in data ? data.sdp.type : "candidate"}`;
          log.push(entry);
          signals.push({ entry, data });
          // A signal the "server" loses (a socket that died with its address).
          if (lose(entry)) lost.push(entry);
          else setTimeout(() => void links[remote]?.handle(data), 0);
        },
        onStream: () => undefined,
        onConnectionState: () => undefined,
        onPathLost: () => log.push(`${self} path lost`),
        onError: (e) => log.push(`error ${String(e)}`),
      },
      { audio: { kind: "audio" } as MediaStreamTrack, video: null },
    );
  const [a, b] = ids;
  links[a] = make(a, b, aInitiator);
  links[b] = make(b, a, bInitiator);
  return { a: links[a], b: links[b], log, lost, signals };
}

const pc = (l: PeerLink) => l.pc as unknown as FakePeerConnection;

describe("negotiation", () => {
  it("the later joiner offers; the other answers, sending on the offered m-lines", async () => {
    const { a, b, log } = pair(true, false);
    await settle();
    expect(log).toEqual(["p_1→p_2 offer", "p_2→p_1 answer"]);
    expect(pc(a).signalingState).toBe("stable");
    expect(pc(b).signalingState).toBe("stable");
    expect(pc(b).transceivers.map((t) => [t.receiver.track.kind, t.direction])).toEqual([
      ["audio", "sendrecv"],
      ["video", "sendrecv"],
    ]);
    expect(pc(b).transceivers[0].sender.track).toEqual({ kind: "audio" });
  });

  it("resolves glare: the impolite (smaller id) offer wins, the polite one rolls back", async () => {
    const { a, b, log } = pair(true, true);
    await settle(40);
    expect(log.filter((l) => l.startsWith("error"))).toEqual([]);
    expect(a.polite).toBe(false);
    expect(b.polite).toBe(true);
    expect(pc(a).signalingState).toBe("stable");
    expect(pc(b).signalingState).toBe("stable");
    // The polite side answered the impolite side's offer.
    expect(pc(b).remoteDescription?.sdp).toBe(pc(a).localDescription?.sdp.replace(/answer$/, "") ?? "");
    expect(log).toContain("p_2→p_1 answer");
  });

  it("ignores candidates of an offer it ignored, without failing", async () => {
    const { b } = pair(false, false);
    // A candidate before any description: the impolite side that ignored an
    // offer drops it; a polite side with no description reports it.
    await b.handle({
      candidate: { candidate: "candidate:1 1 udp 1 192.0.2.1 9 typ host", sdpMid: "0", sdpMLineIndex: 0 },
    });
    expect(pc(b).candidates).toEqual([]);
  });

  it("restarts ICE when the connection fails", () => {
    vi.useFakeTimers();
    const { a } = pair(true, false);
    pc(a).connectionState = "failed";
    pc(a).onconnectionstatechange?.();
    vi.advanceTimersByTime(RESTART_AFTER_DISCONNECTED_MS);
    expect(pc(a).restarts).toBe(1);
  });
});

describe("a path that goes down", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const down = (link: PeerLink, state: "disconnected" | "connected" = "disconnected") => {
    pc(link).connectionState = state;
    pc(link).onconnectionstatechange?.();
  };

  it("checks the signaling socket at once, and the impolite side restarts ICE if it stays disconnected", async () => {
    vi.useFakeTimers();
    const { a, b, log } = pair(true, false);
    await vi.advanceTimersByTimeAsync(10);
    log.length = 0;
    down(a);
    down(b);
    expect(log).toEqual(["p_1 path lost", "p_2 path lost"]);
    await vi.advanceTimersByTimeAsync(RESTART_AFTER_DISCONNECTED_MS + 10);
    // a (p_1, smaller id) is impolite: it restarts; b waits for that.
    expect([pc(a).restarts, pc(b).restarts]).toEqual([1, 0]);
    expect(log.slice(2)).toEqual(["p_1→p_2 offer", "p_2→p_1 answer"]);
    // The polite side's turn comes while the path is still coming back, but
    // the other side's restart (an offer applied since) is under way.
    await vi.advanceTimersByTimeAsync(POLITE_RESTART_AFTER_MS);
    expect([pc(a).restarts, pc(b).restarts]).toEqual([1, 0]);
    down(a, "connected");
    down(b, "connected");
    await vi.advanceTimersByTimeAsync(60_000);
    expect([pc(a).restarts, pc(b).restarts]).toEqual([1, 0]);
  });

  it("the polite side restarts by itself if no restart comes from the other", async () => {
    vi.useFakeTimers();
    const { b, log } = pair(true, false);
    await vi.advanceTimersByTimeAsync(10);
    log.length = 0;
    down(b);
    await vi.advanceTimersByTimeAsync(POLITE_RESTART_AFTER_MS - 10);
    expect(pc(b).restarts).toBe(0);
    await vi.advanceTimersByTimeAsync(20);
    expect(pc(b).restarts).toBe(1);
    expect(log).toEqual(["p_2 path lost", "p_2→p_1 offer", "p_1→p_2 answer"]);
  });

  it("the polite side whose signaling socket was replaced restarts soon, unless the other's offer comes", async () => {
    vi.useFakeTimers();
    const { a, b, log } = pair(true, false);
    await vi.advanceTimersByTimeAsync(10);
    log.length = 0;
    // Only the polite side (b) noticed; its socket was found dead and replaced.
    down(b);
    await vi.advanceTimersByTimeAsync(1_000);
    b.resync();
    await vi.advanceTimersByTimeAsync(POLITE_RESTART_AFTER_RESYNC_MS - 10);
    expect(pc(b).restarts).toBe(0);
    await vi.advanceTimersByTimeAsync(20);
    expect([pc(a).restarts, pc(b).restarts]).toEqual([0, 1]);
    expect(log).toEqual(["p_2 path lost", "p_2→p_1 offer", "p_1→p_2 answer"]);
    // Both noticed: the impolite side's restart comes first, the polite
    // side answers it and restarts nothing of its own.
    down(b, "connected");
    await vi.advanceTimersByTimeAsync(10);
    down(a);
    down(b);
    b.resync();
    a.resync();
    await vi.advanceTimersByTimeAsync(POLITE_RESTART_AFTER_RESYNC_MS + 10);
    expect([pc(a).restarts, pc(b).restarts]).toEqual([1, 1]);
    // The other side's offer came before this side's socket was replaced:
    // it still stands for the restart.
    down(a, "connected");
    down(b, "connected");
    await vi.advanceTimersByTimeAsync(POLITE_RESTART_AFTER_MS + 10);
    down(a);
    down(b);
    a.resync();
    await vi.advanceTimersByTimeAsync(10);
    b.resync();
    await vi.advanceTimersByTimeAsync(POLITE_RESTART_AFTER_RESYNC_MS + 10);
    expect([pc(a).restarts, pc(b).restarts]).toEqual([2, 1]);
    down(a, "connected");
    down(b, "connected");
    await vi.advanceTimersByTimeAsync(60_000);
    expect([pc(a).restarts, pc(b).restarts]).toEqual([2, 1]);
  });

  it("counts a connected path on which nothing arrives any more as down: the impolite side restarts at once", async () => {
    vi.useFakeTimers();
    const { a, b, log } = pair(true, false);
    await vi.advanceTimersByTimeAsync(10);
    log.length = 0;
    for (const link of [a, b]) down(link, "connected");
    // The stats poll, once a second: traffic, then nothing.
    const poll = (t: number, count: number) => {
      a.noteHeard(count, t);
      b.noteHeard(count, t);
    };
    poll(0, 100);
    poll(1000, 150);
    poll(1000 + STALL_MS - 1, 150);
    await vi.advanceTimersByTimeAsync(10);
    expect(log).toEqual([]);
    poll(1000 + STALL_MS, 150);
    await vi.advanceTimersByTimeAsync(10);
    expect(log).toEqual(["p_1 path lost", "p_2 path lost", "p_1→p_2 offer", "p_2→p_1 answer"]);
    await vi.advanceTimersByTimeAsync(POLITE_RESTART_AFTER_MS);
    expect([pc(a).restarts, pc(b).restarts]).toEqual([1, 0]);
    // Traffic again: nothing more happens.
    poll(5000, 200);
    await vi.advanceTimersByTimeAsync(60_000);
    expect([pc(a).restarts, pc(b).restarts]).toEqual([1, 0]);
  });

  it("when the path is back, restarts its video encoding so that a keyframe goes first", async () => {
    vi.useFakeTimers();
    const camera = { kind: "video" } as MediaStreamTrack;
    const { a } = pair(true, false);
    await a.setTrack("video", camera);
    await vi.advanceTimersByTimeAsync(10);
    const sender = pc(a).transceivers.find((t) => t.sender.track === camera)?.sender;
    pc(a).connectionState = "connected";
    a.noteHeard(100, 0);
    a.noteHeard(100, STALL_MS);
    expect(sender?.activeSet).toEqual([]);
    a.noteHeard(150, STALL_MS + 500);
    await vi.advanceTimersByTimeAsync(10);
    expect(sender?.activeSet).toEqual([false, true]);
    // Chromium's own word works the same way: down, then connected.
    down(a);
    down(a, "connected");
    await vi.advanceTimersByTimeAsync(10);
    expect(sender?.activeSet).toEqual([false, true, false, true]);
  });

  it("leaves a blip that heals in time alone", async () => {
    vi.useFakeTimers();
    const { a, log } = pair(true, false);
    await vi.advanceTimersByTimeAsync(10);
    log.length = 0;
    down(a);
    await vi.advanceTimersByTimeAsync(RESTART_AFTER_DISCONNECTED_MS / 2);
    down(a, "connected");
    await vi.advanceTimersByTimeAsync(RESTART_AFTER_DISCONNECTED_MS * 10);
    expect(pc(a).restarts).toBe(0);
    expect(log).toEqual(["p_1 path lost"]);
  });

  it("sends a lost offer again until it is answered, and takes a repeated answer as a repeat", async () => {
    vi.useFakeTimers();
    let first = true;
    // The first offer is lost.
    const { a, b, log, lost } = pair(true, false, undefined, (entry) => {
      const drop = first && entry === "p_1→p_2 offer";
      if (drop) first = false;
      return drop;
    });
    await vi.advanceTimersByTimeAsync(10);
    expect(lost).toEqual(["p_1→p_2 offer"]);
    expect(pc(a).signalingState).toBe("have-local-offer");
    await vi.advanceTimersByTimeAsync(OFFER_RESEND_MS);
    expect(pc(a).signalingState).toBe("stable");
    expect(pc(b).signalingState).toBe("stable");
    // The same offer twice is answered twice; the second answer is dropped.
    await b.handle({ sdp: { type: "offer", sdp: pc(a).localDescription?.sdp ?? "" } });
    await vi.advanceTimersByTimeAsync(10);
    expect(log.filter((l) => l.startsWith("error"))).toEqual([]);
    expect(log.filter((l) => l === "p_2→p_1 answer").length).toBe(2);
    expect(pc(b).remoteDescription?.sdp).toBe(pc(a).localDescription?.sdp);
    // Answered: nothing more goes out.
    const sent = log.length;
    await vi.advanceTimersByTimeAsync(OFFER_RESEND_MS * 5);
    expect(log.length).toBe(sent);
  });

  it("sends an offer again with the candidates gathered since, and a repeat with more of them is still a repeat", async () => {
    vi.useFakeTimers();
    const { a, b, lost, signals } = pair(
      true,
      false,
      undefined,
      (entry) => entry === "p_1→p_2 offer" && lost.length === 0,
    );
    await vi.advanceTimersByTimeAsync(10);
    // The offer was lost, and so were the candidates trickled after it.
    const local = pc(a).localDescription;
    if (!local) throw new Error("no local description");
    local.sdp += "\r\na=candidate:1 1 udp 1 192.0.2.1 9 typ host";
    await vi.advanceTimersByTimeAsync(OFFER_RESEND_MS);
    const offers = signals
      .filter((s) => s.entry === "p_1→p_2 offer")
      .map((s) => ("sdp" in s.data ? s.data.sdp.sdp : ""));
    expect(offers.length).toBe(2);
    expect(offers[1]).toContain("a=candidate:1 1 udp 1 192.0.2.1 9 typ host");
    expect(pc(b).remoteDescription?.sdp).toContain("a=candidate:");
    // The same offer with one more candidate: answered again, not applied anew.
    const applied = pc(b).remoteDescription;
    await b.handle({ sdp: { type: "offer", sdp: `${local.sdp}\r\na=candidate:2 1 udp 1 192.0.2.2 9 typ host` } });
    expect(pc(b).remoteDescription).toBe(applied);
  });

  it("compares descriptions without their candidate lines", () => {
    expect(withoutCandidates("v=0\r\na=candidate:1 x\r\na=end-of-candidates\r\nm=audio")).toBe("v=0\nm=audio");
  });

  it("on a new signaling socket, sends its pending offer again at once", async () => {
    vi.useFakeTimers();
    const { a, b, lost } = pair(true, false, undefined, (entry) => entry === "p_1→p_2 offer" && lost.length === 0);
    await vi.advanceTimersByTimeAsync(10);
    expect(pc(b).signalingState).toBe("stable");
    expect(pc(b).remoteDescription).toBeNull();
    a.resync();
    await vi.advanceTimersByTimeAsync(10);
    expect(pc(a).signalingState).toBe("stable");
    expect(pc(b).remoteDescription?.sdp).toBe(pc(a).localDescription?.sdp);
  });
});
