import { describe, expect, it } from "vitest";
import { PeerLink } from "../src/engine/peer";
import type { SignalData } from "../src/protocol";
import { FakePeerConnection, settle } from "./fakes";

/** Two links wired to each other through an asynchronous "server". */
function pair(aInitiator: boolean, bInitiator: boolean, ids = ["p_1", "p_2"]) {
  const links: Record<string, PeerLink> = {};
  const log: string[] = [];
  const make = (self: string, remote: string, initiator: boolean) =>
    new PeerLink(
      {
        selfId: self,
        remoteId: remote,
        initiator,
        iceServers: [],
        createPeerConnection: (c) => new FakePeerConnection(c) as unknown as RTCPeerConnection,
        send: (data: SignalData) => {
          log.push(`${self}→${remote} ${"sdp" in data ? data.sdp.type : "candidate"}`);
          setTimeout(() => void links[remote]?.handle(data), 0);
        },
        onStream: () => undefined,
        onConnectionState: () => undefined,
        onError: (e) => log.push(`error ${String(e)}`),
      },
      { audio: { kind: "audio" } as MediaStreamTrack, video: null },
    );
  const [a, b] = ids;
  links[a] = make(a, b, aInitiator);
  links[b] = make(b, a, bInitiator);
  return { a: links[a], b: links[b], log };
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
    const { a } = pair(true, false);
    pc(a).connectionState = "failed";
    pc(a).onconnectionstatechange?.();
    expect(pc(a).restarts).toBe(1);
  });
});
