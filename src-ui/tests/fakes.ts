import type { Peer } from "../src/protocol";

/** A room member as the server describes it. */
export const testPeer = (id: string, name: string, extra: Partial<Peer> = {}): Peer => ({
  id,
  name,
  client: "browser",
  joined_at: 1,
  in_call: false,
  media: { audio: true, video: false, screen: false },
  ...extra,
});

// Test doubles for the browser's WebSocket and RTCPeerConnection: just
// enough state machine to drive the engine's logic deterministically.

export class FakeSocket {
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  /** Silently dead (its machine's address went away): what is sent is
   *  lost, nothing arrives, and no close is reported. */
  dead = false;
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;

  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string) {
    const msg = JSON.parse(data);
    this.sent.push(msg);
    // The server answers a ping at once, as huddle-server does.
    if (msg.type === "ping" && !this.dead) setTimeout(() => this.receive({ type: "pong" }), 0);
  }
  close(code = 1000) {
    this.drop(code);
  }
  // --- test side ---
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  receive(msg: Record<string, unknown>) {
    if (this.dead) return;
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
  drop(code = 1006) {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason: "" });
  }
  sentOfType(type: string) {
    return this.sent.filter((m) => m.type === type);
  }
  static last(): FakeSocket {
    const s = FakeSocket.all[FakeSocket.all.length - 1];
    if (!s) throw new Error("no socket");
    return s;
  }
}

type Desc = { type: "offer" | "answer" | "rollback" | "pranswer"; sdp: string };

interface FakeTransceiver {
  receiver: { track: { kind: string } };
  sender: {
    track: unknown;
    replaceTrack: (t: unknown) => Promise<void>;
    getParameters: () => { encodings: { active: boolean }[] };
    setParameters: (p: { encodings: { active: boolean }[] }) => Promise<void>;
    /** Each encoding's `active` as set, in order. */
    activeSet: boolean[];
  };
  direction: string;
  setCodecPreferences: () => void;
}

let pcSeq = 0;

/** An RTCPeerConnection with real signaling-state rules and no media. */
export class FakePeerConnection {
  readonly name = `pc${++pcSeq}`;
  signalingState: "stable" | "have-local-offer" | "have-remote-offer" | "closed" = "stable";
  connectionState = "new";
  localDescription: Desc | null = null;
  remoteDescription: Desc | null = null;
  candidates: unknown[] = [];
  transceivers: FakeTransceiver[] = [];
  onnegotiationneeded: (() => void) | null = null;
  onicecandidate: ((e: { candidate: null }) => void) | null = null;
  ontrack: unknown = null;
  onconnectionstatechange: (() => void) | null = null;
  restarts = 0;
  private offers = 0;

  constructor(readonly config: unknown) {}

  addTransceiver(trackOrKind: string | { kind: string }) {
    const kind = typeof trackOrKind === "string" ? trackOrKind : trackOrKind.kind;
    const t = this.makeTransceiver(kind);
    if (typeof trackOrKind !== "string") t.sender.track = trackOrKind;
    this.scheduleNegotiation();
    return t;
  }
  /** Like browsers: coalesced, and fired only in the stable state. */
  private negotiationScheduled = false;
  private scheduleNegotiation() {
    if (this.negotiationScheduled) return;
    this.negotiationScheduled = true;
    queueMicrotask(() => {
      this.negotiationScheduled = false;
      if (this.signalingState === "stable") this.onnegotiationneeded?.();
    });
  }
  private makeTransceiver(kind: string) {
    const t: FakeTransceiver = {
      receiver: { track: { kind } },
      sender: {
        track: null,
        replaceTrack: async (track) => {
          t.sender.track = track;
        },
        getParameters: () => ({ encodings: [{ active: t.sender.activeSet.at(-1) ?? true }] }),
        setParameters: async (p) => {
          t.sender.activeSet.push(...p.encodings.map((e) => e.active));
        },
        activeSet: [],
      },
      direction: "sendrecv",
      setCodecPreferences: () => undefined,
    };
    this.transceivers.push(t);
    return t;
  }
  getTransceivers() {
    return this.transceivers;
  }
  async setLocalDescription(desc?: Desc) {
    await Promise.resolve();
    const type = desc?.type ?? (this.signalingState === "have-remote-offer" ? "answer" : "offer");
    if (type === "offer") {
      if (this.signalingState !== "stable") throw new Error(`InvalidStateError: offer in ${this.signalingState}`);
      this.offers += 1;
      const kinds = this.transceivers.map((t) => t.receiver.track.kind).join(",");
      this.localDescription = { type, sdp: `${this.name} offer ${this.offers} m=${kinds}` };
      this.signalingState = "have-local-offer";
    } else {
      if (this.signalingState !== "have-remote-offer")
        throw new Error(`InvalidStateError: answer in ${this.signalingState}`);
      this.localDescription = { type: "answer", sdp: `${this.name} answer` };
      this.signalingState = "stable";
    }
  }
  async setRemoteDescription(desc: Desc) {
    await Promise.resolve();
    if (desc.type === "offer") {
      if (this.signalingState === "have-local-offer") {
        // Implicit rollback (what browsers do for the polite peer).
        this.localDescription = null;
        this.signalingState = "stable";
      }
      if (this.signalingState !== "stable")
        throw new Error(`InvalidStateError: remote offer in ${this.signalingState}`);
      this.remoteDescription = desc;
      const kinds = /m=(.*)$/.exec(desc.sdp)?.[1]?.split(",").filter(Boolean) ?? [];
      kinds.forEach((kind, i) => {
        if (!this.transceivers[i]) {
          const t = this.makeTransceiver(kind);
          t.direction = "recvonly";
        }
      });
      this.signalingState = "have-remote-offer";
    } else if (desc.type === "answer") {
      if (this.signalingState !== "have-local-offer")
        throw new Error(`InvalidStateError: answer in ${this.signalingState}`);
      this.remoteDescription = desc;
      this.signalingState = "stable";
    }
  }
  async addIceCandidate(candidate: unknown) {
    await Promise.resolve();
    if (!this.remoteDescription) throw new Error("InvalidStateError: no remote description");
    this.candidates.push(candidate);
  }
  restartIce() {
    this.restarts += 1;
    this.scheduleNegotiation();
  }
  async getStats() {
    return new Map();
  }
  close() {
    this.signalingState = "closed";
  }
}

/** Lets every queued promise and zero-delay timer run. */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setTimeout(r, 0));
}
