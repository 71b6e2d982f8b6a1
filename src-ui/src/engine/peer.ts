// One remote call member: its RTCPeerConnection and the W3C "perfect
// negotiation" pattern, as the protocol prescribes (polite = greater id;
// the later joiner makes the first offer).
//
// Signals are handled strictly one after the other: each waits for the
// previous one's promises, so a candidate never races its description.

import type { IceCandidate, SignalData } from "../protocol";
import { preferH264 } from "./codecs";

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
  /** A failure worth telling the user about (never thrown at the caller). */
  onError: (error: unknown) => void;
}

export type LocalTracks = { audio: MediaStreamTrack | null; video: MediaStreamTrack | null };

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
      const stream = streams[0] ?? this.stream;
      if (!stream) return;
      if (!streams[0]) stream.addTrack(track);
      options.onStream(stream);
    };
    this.pc.onconnectionstatechange = () => {
      const state = this.pc.connectionState;
      options.onConnectionState(state);
      // A failed path gets new candidates rather than a dead tile.
      if (state === "failed") this.pc.restartIce();
    };
    if (options.initiator) {
      // Both m-lines from the start, even with the camera off, so turning it
      // on later is a replaceTrack, not a renegotiation.
      this.pc.addTransceiver(tracks.audio ?? "audio", { direction: "sendrecv" });
      const video = this.pc.addTransceiver(tracks.video ?? "video", { direction: "sendrecv" });
      preferH264(video);
    }
  }

  private async negotiate(): Promise<void> {
    if (this.closed) return;
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      const local = this.pc.localDescription;
      if (local) this.options.send({ sdp: { type: local.type, sdp: local.sdp } });
    } catch (error) {
      this.options.onError(error);
    } finally {
      this.makingOffer = false;
    }
  }

  /** Queues a signal from the remote member. */
  handle(data: SignalData): Promise<void> {
    this.queue = this.queue.then(() => this.process(data)).catch((error) => this.options.onError(error));
    return this.queue;
  }

  private async process(data: SignalData): Promise<void> {
    if (this.closed) return;
    if ("sdp" in data) {
      const description = data.sdp;
      const readyForOffer = !this.makingOffer && (this.pc.signalingState === "stable" || this.settingRemoteAnswer);
      const collision = description.type === "offer" && !readyForOffer;
      this.ignoreOffer = !this.polite && collision;
      if (this.ignoreOffer) return;
      this.settingRemoteAnswer = description.type === "answer";
      try {
        // For the polite peer in a collision this rolls its own offer back.
        await this.pc.setRemoteDescription(description as RTCSessionDescriptionInit);
      } finally {
        this.settingRemoteAnswer = false;
      }
      if (description.type === "offer") {
        this.attachTracks();
        await this.pc.setLocalDescription();
        const local = this.pc.localDescription;
        if (local) this.options.send({ sdp: { type: local.type, sdp: local.sdp } });
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
