// One remote call member: its RTCPeerConnection and the W3C "perfect
// negotiation" pattern, as the protocol prescribes (polite = greater id;
// the later joiner makes the first offer).
//
// Signals are handled strictly one after the other: each waits for the
// previous one's promises, so a candidate never races its description.
//
// A path that goes down (the network changed, a NAT forgot us) is not left
// to the browser, which calls it `failed` only after ~15–30 s. It is down
// when the browser says `disconnected`, or sooner, when nothing at all has
// arrived for `STALL_MS` (`noteHeard`). Then the signaling socket is asked
// at once whether it still works (`onPathLost`: the same network change may
// have killed it silently), and the impolite side restarts ICE. The polite
// side restarts only if no offer came by `POLITE_RESTART_AFTER_MS`: two
// restarts crossing each other make the polite side roll its own back, and
// in Chromium a rolled-back restart left the remote video frozen for good
// although its frames went on being decoded (3 of 9 lab runs).
// Signals can be lost on the way — a signaling socket that died with the
// machine's old address takes them along — so an offer not answered within
// `OFFER_RESEND_MS` is sent again, and an offer or answer that arrives twice
// is recognized as a repeat.

import type { IceCandidate, SignalData } from "../protocol";
import { preferH264, withOpusDtx } from "./codecs";

export interface PeerLinkOptions {
  selfId: string;
  remoteId: string;
  /** True for the member that joined the call later: it offers first. */
  initiator: boolean;
  iceServers: RTCIceServer[];
  createPeerConnection: (config: RTCConfiguration) => RTCPeerConnection;
  send: (data: SignalData) => void;
  onStream: (stream: MediaStream) => void;
  onConnectionState: (state: RTCPeerConnectionState) => void;
  /** The path went down: the network may have changed under the signaling
   *  socket too. */
  onPathLost: () => void;
  /** A failure worth telling the user about (never thrown at the caller). */
  onError: (error: unknown) => void;
}

export type LocalTracks = { audio: MediaStreamTrack | null; video: MediaStreamTrack | null };

/** How long the impolite side lets a path stay `disconnected` before it
 *  restarts ICE (Chromium says `disconnected` after ~2.5 s without an answer
 *  to its checks; a path on which nothing arrives restarts at once). */
export const RESTART_AFTER_DISCONNECTED_MS = 1_000;
/** How long the polite side waits for the other side's restart before it
 *  restarts itself (the other may be an engine slow to notice). */
export const POLITE_RESTART_AFTER_MS = 3_000;
/** How long the polite side waits for the other side's restart once its own
 *  signaling socket, found dead while the path was down, has been replaced:
 *  its own network most likely changed, and the other side may be slow to
 *  notice (a native engine restarts ~9 s after it, a polite browser
 *  waited out the whole `POLITE_RESTART_AFTER_MS` for nothing: media back
 *  4.2–4.8 s after the change in the lab). A browser on the other side that
 *  did restart sends its offer again every `OFFER_RESEND_MS`, which reaches
 *  the new socket within this. */
export const POLITE_RESTART_AFTER_RESYNC_MS = 750;
/** An offer still unanswered after this long is sent again: soon after the
 *  other side's signaling socket, found dead, has been replaced. */
export const OFFER_RESEND_MS = 500;
/** While the path stays down, ICE is restarted again this often (the polite
 *  side: twice as seldom) — one restart can fail, e.g. run while the network
 *  was still out. */
export const RESTART_EVERY_MS = 12_000;
/** A connected path that delivers nothing at all for this long is down
 *  (RTCP and ICE's consent checks arrive even from a member who sends no
 *  media; a browser's audio alone brings 50 packets a second, muted or not). */
export const STALL_MS = 1_000;
/** How often one offer is sent again at most (30 s worth: past that, the
 *  server's grace for a vanished member is over anyway). */
export const OFFER_RESENDS = 60;

export class PeerLink {
  readonly pc: RTCPeerConnection;
  readonly polite: boolean;
  private makingOffer = false;
  private ignoreOffer = false;
  private settingRemoteAnswer = false;
  private queue: Promise<void> = Promise.resolve();
  private tracks: LocalTracks;
  private closed = false;
  private readonly stream: MediaStream | null;
  private restartTimer: ReturnType<typeof setTimeout> | null = null;
  /** What the stats poll heard so far, and when that count last grew. */
  private heard = { count: 0, grewAt: 0 };
  private stalled = false;
  /** Chromium said the path was down, and has not said it is back yet. */
  private wasDown = false;
  /** When a remote offer was last applied (ms). */
  private remoteOfferAt = 0;
  /** Since when the running watch on a down path counts an offer from the
   *  other side as its restart (see `watchPath`). */
  private watchedSince = 0;
  private resendTimer: ReturnType<typeof setTimeout> | null = null;
  /** The last remote offer applied, less its candidate lines (a repeat may
   *  carry more): a repeat is answered with the answer already given. */
  private lastRemoteOffer: string | null = null;
  /** Our last offer, as sent. */
  private sentOffer: string | null = null;

  constructor(
    private readonly options: PeerLinkOptions,
    tracks: LocalTracks,
  ) {
    this.polite = options.selfId > options.remoteId;
    this.tracks = tracks;
    this.pc = options.createPeerConnection({ iceServers: options.iceServers });
    this.stream = typeof MediaStream === "undefined" ? null : new MediaStream();
    this.pc.onnegotiationneeded = () => void this.negotiate();
    this.pc.onicecandidate = ({ candidate }) => {
      if (this.closed) return;
      options.send({ candidate: candidate ? toWire(candidate) : null });
    };
    this.pc.ontrack = ({ track, streams }) => {
      console.debug(`huddle: peer ${options.remoteId}: track ${track.kind} ${track.id} in ${streams.map((s) => s.id)}`);
      const stream = streams[0] ?? this.stream;
      if (!stream) return;
      if (!streams[0]) stream.addTrack(track);
      options.onStream(stream);
    };
    this.pc.onconnectionstatechange = () => this.onConnectionState();
    if (options.initiator) {
      // Both m-lines from the start, even with the camera off, so turning it
      // on later is a replaceTrack, not a renegotiation.
      this.pc.addTransceiver(tracks.audio ?? "audio", { direction: "sendrecv" });
      const video = this.pc.addTransceiver(tracks.video ?? "video", { direction: "sendrecv" });
      preferH264(video);
    }
  }

  private onConnectionState(): void {
    const state = this.pc.connectionState;
    this.options.onConnectionState(state);
    if (state === "disconnected" || state === "failed") {
      this.wasDown = true;
      this.pathDown(RESTART_AFTER_DISCONNECTED_MS);
    } else if (state === "connected" && this.wasDown) {
      this.pathBack();
    }
  }

  /**
   * The stats poll's count of everything heard from the member (see
   * `StatsSample.heard`), at `now` (ms). A connected path on which nothing
   * at all arrives any more is the first sign of a dead one — the browser
   * says `disconnected` seconds later (~7 s measured in the lab after an
   * address change) — so it counts as down.
   */
  noteHeard(count: number, now: number): void {
    if (count !== this.heard.count) {
      this.heard = { count, grewAt: now };
      if (this.stalled) this.pathBack();
      this.stalled = false;
      return;
    }
    const stalled = count > 0 && now - this.heard.grewAt >= STALL_MS && this.pc.connectionState === "connected";
    if (stalled && !this.stalled) {
      this.stalled = true;
      // It has lasted a while already: the impolite side restarts now.
      this.pathDown(0);
    }
  }

  /** The path went down: the signaling socket is checked now, ICE restarted
   *  after `wait` (impolite) or much later (polite) if it is still down. */
  private pathDown(wait: number): void {
    if (this.restartTimer) return;
    this.options.onPathLost();
    this.watchPath(this.polite ? POLITE_RESTART_AFTER_MS : wait);
  }

  /**
   * The path is back after being down: the other side lost what we sent
   * meanwhile and needs a keyframe. Its own request may be lost too — in
   * the lab, the first PLI after an address change never reached the
   * sender, and Chromium asked again only ~3 s later — and a page cannot
   * send a keyframe directly; turning the video encoding off and on again
   * starts it with one.
   */
  private pathBack(): void {
    this.wasDown = false;
    const sender = this.pc.getTransceivers().find((t) => t.sender.track?.kind === "video")?.sender;
    if (!sender || typeof sender.getParameters !== "function") return;
    const toggle = async (active: boolean) => {
      const parameters = sender.getParameters();
      if (parameters.encodings.length === 0) return false;
      for (const encoding of parameters.encodings) encoding.active = active;
      await sender.setParameters(parameters);
      return true;
    };
    void toggle(false)
      .then((toggled) => toggled && toggle(true))
      .catch((error) => this.options.onError(error));
  }

  private isDown(): boolean {
    const state = this.pc.connectionState;
    return !this.closed && (state === "disconnected" || state === "failed" || this.stalled);
  }

  /** The path went down: unless it heals within `wait`, or the other side
   *  restarts first, restart ICE — and again while it stays down. */
  private watchPath(wait: number, since = Date.now()): void {
    if (this.restartTimer) return;
    this.watchedSince = since;
    const check = () => {
      this.restartTimer = null;
      if (!this.isDown()) return;
      // The other side's restart (an offer applied since) is under way.
      if (this.remoteOfferAt < since) {
        const why = this.stalled ? "nothing heard" : this.pc.connectionState;
        console.info(`huddle: peer ${this.options.remoteId}: path down (${why}), restarting ICE`);
        this.pc.restartIce();
      }
      this.watchPath(RESTART_EVERY_MS * (this.polite ? 2 : 1));
    };
    this.restartTimer = setTimeout(check, wait);
  }

  private async negotiate(): Promise<void> {
    if (this.closed) return;
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      const local = this.pc.localDescription;
      if (local) {
        this.signal({ sdp: { type: local.type, sdp: local.sdp } });
        if (local.type === "offer") {
          // As sent: the description itself grows candidate lines later.
          this.sentOffer = local.sdp;
          this.resendUnanswered(local.sdp, OFFER_RESENDS);
        }
      }
    } catch (error) {
      this.options.onError(error);
    } finally {
      this.makingOffer = false;
    }
  }

  /** Sends offer `sdp` again every `OFFER_RESEND_MS` while it stays our
   *  unanswered local description. */
  private resendUnanswered(sdp: string, left: number): void {
    if (this.resendTimer) clearTimeout(this.resendTimer);
    this.resendTimer = null;
    if (left <= 0) return;
    this.resendTimer = setTimeout(() => {
      this.resendTimer = null;
      if (!this.resendOffer(sdp)) return;
      this.resendUnanswered(sdp, left - 1);
    }, OFFER_RESEND_MS);
  }

  /** Sends our offer `sdp` again if it is still unanswered; whether it was. */
  private resendOffer(sdp: string): boolean {
    const pending = this.pc.signalingState === "have-local-offer" && this.sentOffer === sdp;
    if (pending && !this.closed) {
      console.info(`huddle: peer ${this.options.remoteId}: offer unanswered, sent again`);
      // As it is now: with the candidates gathered since, whose own
      // signals may have been lost along with the offer.
      this.signal({ sdp: { type: "offer", sdp: this.pc.localDescription?.sdp ?? sdp } });
    }
    return pending && !this.closed;
  }

  /**
   * The signaling socket was replaced (what was sent on the old one may be
   * lost): our pending offer goes again, and a path that is down restarts —
   * at once on the impolite side, after `POLITE_RESTART_AFTER_RESYNC_MS`
   * without the other side's offer on the polite one.
   */
  resync(): void {
    if (this.closed) return;
    const sent = this.sentOffer;
    if (sent !== null && this.resendOffer(sent)) this.resendUnanswered(sent, OFFER_RESENDS);
    // The impolite side restarts a path still down; the polite one waits
    // for that restart (its own would cross it), but only a moment now.
    if (!this.isDown() || this.pc.signalingState !== "stable") return;
    if (!this.polite) {
      this.pc.restartIce();
    } else {
      // Sooner, but an offer applied since the path went down still counts.
      const since = this.restartTimer ? this.watchedSince : Date.now();
      if (this.restartTimer) clearTimeout(this.restartTimer);
      this.restartTimer = null;
      this.watchPath(POLITE_RESTART_AFTER_RESYNC_MS, since);
    }
  }

  /** Sends a signal to the remote member (descriptions noted in the log). */
  private signal(data: SignalData): void {
    if ("sdp" in data) console.debug(`huddle: peer ${this.options.remoteId}: ${data.sdp.type} out`);
    this.options.send(data);
  }

  /** Queues a signal from the remote member. */
  handle(data: SignalData): Promise<void> {
    if ("sdp" in data) console.debug(`huddle: peer ${this.options.remoteId}: ${data.sdp.type} in`);
    this.queue = this.queue.then(() => this.process(data)).catch((error) => this.options.onError(error));
    return this.queue;
  }

  private async process(data: SignalData): Promise<void> {
    if (this.closed) return;
    if ("sdp" in data) {
      const description = data.sdp;
      if (description.type === "answer" && this.pc.signalingState !== "have-local-offer") {
        return; // the answer to an offer sent twice, already applied
      }
      if (description.type === "offer" && withoutCandidates(description.sdp) === this.lastRemoteOffer) {
        // A repeat (our answer may have been lost): the answer again.
        const local = this.pc.localDescription;
        if (this.pc.signalingState === "stable" && local?.type === "answer") {
          this.signal({ sdp: { type: "answer", sdp: local.sdp } });
        }
        return;
      }
      const readyForOffer = !this.makingOffer && (this.pc.signalingState === "stable" || this.settingRemoteAnswer);
      const collision = description.type === "offer" && !readyForOffer;
      this.ignoreOffer = !this.polite && collision;
      if (this.ignoreOffer) return;
      this.settingRemoteAnswer = description.type === "answer";
      try {
        // For the polite peer in a collision this rolls its own offer back.
        await this.pc.setRemoteDescription({ type: description.type, sdp: withOpusDtx(description.sdp) });
      } finally {
        this.settingRemoteAnswer = false;
      }
      if (description.type === "offer") {
        this.lastRemoteOffer = withoutCandidates(description.sdp);
        this.remoteOfferAt = Date.now();
        this.attachTracks();
        await this.pc.setLocalDescription();
        const local = this.pc.localDescription;
        if (local) this.signal({ sdp: { type: local.type, sdp: local.sdp } });
      }
    } else {
      try {
        await this.pc.addIceCandidate(data.candidate ?? undefined);
      } catch (error) {
        if (!this.ignoreOffer) throw error;
      }
    }
  }

  /** After a remote offer: send on the transceivers it created. */
  private attachTracks(): void {
    for (const transceiver of this.pc.getTransceivers()) {
      const kind = transceiver.receiver.track?.kind;
      if (kind !== "audio" && kind !== "video") continue;
      if (transceiver.direction === "recvonly" || transceiver.direction === "inactive") {
        transceiver.direction = "sendrecv";
      }
      if (kind === "video") preferH264(transceiver);
      const track = this.tracks[kind];
      if (transceiver.sender.track !== track) void transceiver.sender.replaceTrack(track);
    }
  }

  /** Sends `track` (or nothing) for `kind` without renegotiating. */
  async setTrack(kind: "audio" | "video", track: MediaStreamTrack | null): Promise<void> {
    this.tracks = { ...this.tracks, [kind]: track };
    for (const transceiver of this.pc.getTransceivers()) {
      if (transceiver.receiver.track?.kind === kind && transceiver.sender.track !== track) {
        await transceiver.sender.replaceTrack(track);
      }
    }
  }

  close(): void {
    this.closed = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.resendTimer) clearTimeout(this.resendTimer);
    this.restartTimer = this.resendTimer = null;
    this.pc.onnegotiationneeded = null;
    this.pc.onicecandidate = null;
    this.pc.ontrack = null;
    this.pc.onconnectionstatechange = null;
    this.pc.close();
  }
}

function toWire(candidate: RTCIceCandidate): IceCandidate {
  const json = candidate.toJSON();
  const wire: IceCandidate = { candidate: json.candidate ?? "" };
  if (json.sdpMid != null) wire.sdpMid = json.sdpMid;
  if (json.sdpMLineIndex != null) wire.sdpMLineIndex = json.sdpMLineIndex;
  if (json.usernameFragment != null) wire.usernameFragment = json.usernameFragment;
  return wire;
}

/** A description without its candidate lines (which grow as ICE gathers). */
export function withoutCandidates(sdp: string): string {
  return sdp
    .split(/\r?\n/)
    .filter((line) => !line.startsWith("a=candidate:") && line !== "a=end-of-candidates")
    .join("\n");
}
