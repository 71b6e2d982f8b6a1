// The browser's Engine: protocol v1 over a WebSocket, media with the
// browser's own WebRTC. State lives in one immutable `EngineState` that the
// UI subscribes to; every change goes through `update`.
//
// Over 600 lines (near 800), one class: its sections (lobby and membership, chat, calls,
// local media, clocks) share its connection and state. What needs neither
// lives beside it as pure functions both engines share: session.ts,
// ringing.ts, outgoing.ts, gestures.ts, invite.ts.

import { ObservableState } from "./observable";
import type { Attachment, ClientMessage, IceServer, ServerMessage, SignalData } from "../protocol";
import type { AudioProcessing, Engine, JoinRequest, OutgoingChat, PeerStats } from "./types";
import { describeError, expireShown, initialState, leftCall, markedRead } from "./session";
import * as gestures from "./gestures";
import { Ringer, type RingHost } from "./ringer";
import { CONFIRM_MS, failOutgoing, queueChat, takeForRetry, withoutOutgoing } from "./outgoing";
import { appLink, webLink, type InviteLinks } from "./invite";
import { Signaling } from "./signaling";
import { PeerLink } from "./peer";
import { collectStats, type StatsSample } from "./stats";
import { keepMembership, takeMembership, type TabStore } from "./reload";
import { VoiceDetector, webAudioMeter, type LevelMeter } from "./voice";

/** How often our microphone's level is judged (ms). */
const VOICE_STEP_MS = 100;
/** How often the links' statistics are read (figures shown, paths watched). */
const STATS_EVERY_MS = 500;

/** What the engine needs from the browser; tests substitute fakes. */
export interface BrowserEnvironment {
  createSocket: (url: string) => WebSocket;
  createPeerConnection: (config: RTCConfiguration) => RTCPeerConnection;
  mediaDevices: Pick<MediaDevices, "getUserMedia" | "getDisplayMedia" | "enumerateDevices" | "addEventListener"> | null;
  now: () => number;
  /** This tab's sessionStorage: what a reload takes back (see reload.ts). */
  tabStore?: TabStore | null;
  /** A level meter on our microphone (see voice.ts); absent: none. */
  meter?: (track: MediaStreamTrack) => LevelMeter | null;
}

export function browserEnvironment(): BrowserEnvironment {
  return {
    createSocket: (url) => new WebSocket(url),
    createPeerConnection: (config) => new RTCPeerConnection(config),
    mediaDevices: typeof navigator !== "undefined" && navigator.mediaDevices ? navigator.mediaDevices : null,
    now: () => Date.now(),
    tabStore: typeof sessionStorage !== "undefined" ? sessionStorage : null,
    meter: webAudioMeter,
  };
}

/** Join errors after which the user is back in the lobby. */
const JOIN_ERRORS = new Set([
  "room_full",
  "bad_password",
  "invalid_room",
  "invalid_name",
  "forbidden",
  "server_full",
  "unsupported_version",
  "rate_limited",
]);

export class BrowserEngine extends ObservableState implements Engine {
  private signaling: Signaling;
  private request: JoinRequest | null = null;
  private resumeToken: string | null = null;
  private iceServers: RTCIceServer[] = [];
  private links = new Map<string, PeerLink>();
  private camera: MediaStreamTrack | null = null;
  private screen: MediaStreamTrack | null = null;
  private microphone: MediaStreamTrack | null = null;
  private meter: LevelMeter | null = null;
  /** The check before a call: its devices and the meter on its microphone. */
  private previewStream: MediaStream | null = null;
  private previewMeter: LevelMeter | null = null;
  private previewGeneration = 0;
  private voice = new VoiceDetector();
  private watching = false;
  private wantCall: { video: boolean } | null = null;
  /** Set while coming back from a reload: the call to rejoin, if any. */
  private reloaded: { call: { video: boolean } | null } | null = null;
  private lastStats = new Map<string, StatsSample>();
  private chatSeq = 0;
  private timers: ReturnType<typeof setInterval>[] = [];
  /** What the shared ring and gesture code calls back into. */
  private readonly host: RingHost = {
    current: () => this.state,
    set: (state) => this.update(() => state),
    send: (message) => void this.send(message),
    joinCall: (video) => this.joinCall(video),
    leaveCall: () => this.leaveCall(),
    now: () => this.env.now(),
  };
  private readonly ringer = new Ringer(this.host);

  /** `accessToken`: the server's access token (from the page's link), given in `join` and `rooms`. */
  constructor(
    private readonly serverUrl: string,
    private readonly env: BrowserEnvironment = browserEnvironment(),
    private readonly accessToken: string | null = null,
  ) {
    super(initialState());
    this.signaling = new Signaling(
      serverUrl,
      {
        open: () => this.onOpen(),
        message: (msg) => this.onMessage(msg),
        closed: (code, reason, willRetry) => this.onClosed(code, reason, willRetry),
      },
      env.createSocket,
    );
    this.timers.push(setInterval(() => this.tick(), 1000));
    // Twice a second: a path on which nothing arrives is noticed within
    // `STALL_MS` plus half a second (see peer.ts).
    this.timers.push(setInterval(() => this.links.size > 0 && void this.pollStats(), STATS_EVERY_MS));
    this.timers.push(setInterval(() => this.listen(), VOICE_STEP_MS));
    void this.refreshDevices();
    env.mediaDevices?.addEventListener?.("devicechange", () => void this.refreshDevices());
  }

  private send(msg: ClientMessage): boolean {
    return this.signaling.send(msg);
  }

  // --- lobby and membership ---------------------------------------------

  watchRooms(on: boolean): void {
    this.watching = on;
    if (on) {
      this.signaling.connect();
      this.sendRooms(true);
    } else {
      this.sendRooms(false);
    }
  }

  private sendRooms(watch: boolean): void {
    this.send({ type: "rooms", watch, ...(this.accessToken ? { token: this.accessToken } : {}) });
  }

  join(request: JoinRequest): void {
    this.request = request;
    this.resumeToken = null;
    this.reloaded = null;
    this.update((s) => ({ ...s, status: "connecting", error: null }));
    if (this.signaling.isOpen) this.sendJoin();
    else this.signaling.connect();
  }

  private sendJoin(): void {
    const r = this.request;
    if (!r) return;
    const local = this.state.local;
    this.send({
      type: "join",
      v: 1,
      room: r.room,
      name: r.name,
      client: "browser",
      ...(r.password ? { password: r.password } : {}),
      ...(this.accessToken ? { token: this.accessToken } : {}),
      ...(this.resumeToken ? { resume: this.resumeToken } : {}),
      media: { audio: local.audio, video: local.video, screen: local.screen },
    });
  }

  /**
   * Takes back the membership the page before this one kept, if this page
   * is its reload: joins with its resume token, and rejoins its call. False
   * if there was none for this server, it was too old, or this page was
   * reached otherwise (the kept membership is dropped then).
   */
  resumeAfterReload(reloaded = true): boolean {
    const kept = takeMembership(this.env.tabStore ?? null, this.serverUrl, this.env.now());
    // Only a reload comes back: following a link or typing an address in
    // the same tab starts afresh (the old place ends with its grace).
    if (!kept || !reloaded) return false;
    this.join({ room: kept.room, name: kept.name });
    this.resumeToken = kept.resume;
    this.reloaded = { call: kept.call };
    return true;
  }

  /**
   * The page is going away (a reload, or the tab closing — a page cannot
   * tell which): keeps the membership for the next page of this tab and
   * lets the socket drop, so the server holds the place for its grace
   * period instead of announcing a leave.
   */
  keepForReload(): void {
    // While reconnecting the token still holds the place (the grace period).
    if (this.request && this.resumeToken) {
      keepMembership(this.env.tabStore ?? null, {
        server: this.serverUrl,
        room: this.request.room,
        name: this.request.name,
        resume: this.resumeToken,
        call: this.state.inCall ? { video: this.state.local.video } : null,
        keptAt: this.env.now(),
      });
    } else if (this.request) {
      this.send({ type: "leave" });
    }
    this.dispose();
  }

  leave(): void {
    this.send({ type: "leave" });
    this.endCallLocally();
    this.request = null;
    this.resumeToken = null;
    this.update((s) => ({ ...initialState(), rooms: s.rooms, devices: s.devices }));
    if (this.watching) this.sendRooms(true);
  }

  private onOpen(): void {
    if (this.watching) this.sendRooms(true);
    if (this.request) this.sendJoin();
  }

  private onClosed(_code: number, _reason: string, willRetry: boolean): void {
    if (!this.request) return;
    if (willRetry) {
      // Keep the call and the chat: the peer connections do not depend on
      // the socket, and `resume` takes the membership back.
      this.update((s) => ({
        ...s,
        status: s.status === "joined" || s.status === "reconnecting" ? "reconnecting" : s.status,
      }));
    } else {
      this.update((s) =>
        failOutgoing({
          ...s,
          status: "offline",
          error: { code: "connection", message: "Lost the connection to the server." },
        }),
      );
    }
  }

  /** Tries to reconnect now (from the "offline" banner). */
  retry(): void {
    this.update((s) => ({ ...s, status: this.request ? "reconnecting" : s.status, error: null }));
    this.signaling.retryNow();
  }

  private onMessage(msg: ServerMessage & { rid?: string }): void {
    const before = this.state;
    if (msg.type === "error" && before.status === "connecting" && JOIN_ERRORS.has(msg.code)) {
      // The join failed: back to the lobby with the reason.
      const afterReload = this.reloaded !== null;
      this.request = null;
      this.reloaded = null;
      const reason = describeError(msg.code, msg.message);
      const message = afterReload ? `Your place in the room expired while the page reloaded. ${reason}` : reason;
      this.update((s) => ({ ...s, status: "idle", error: { code: msg.code, message } }));
      return;
    }
    if (msg.type === "signal") {
      this.onSignal(msg.from, msg.data);
      return;
    }
    this.ringer.receive(msg);
    switch (msg.type) {
      case "joined":
        this.flushOutgoing(msg.resumed);
        this.resumeToken = msg.resume;
        this.iceServers = msg.ice_servers.map(toRtcIceServer);
        if (this.reloaded) {
          // Back from a reload: this page has no call of its own. If the
          // server still counts us in the call, leave it first so that the
          // others drop their links to the page that went away, then join
          // afresh and offer to everyone.
          const call = this.reloaded.call;
          this.reloaded = null;
          if (msg.resumed && msg.self.in_call) this.send({ type: "call_leave" });
          if (call) void this.joinCall(call.video);
        } else if (!msg.resumed) {
          // A new membership: peers saw us leave, so the old call is gone.
          const rejoin = this.links.size > 0 || before.inCall ? (this.wantCall ?? { video: before.local.video }) : null;
          this.closeLinks();
          if (rejoin) void this.joinCall(rejoin.video);
        } else {
          // The same membership over a new socket: signals sent on the old
          // one may be lost with it (a socket that died with the machine's
          // old address) — offers go again, paths that are down restart.
          for (const link of this.links.values()) link.resync();
        }
        break;
      case "call_joined":
        // The call's own ICE servers (a server may give TURN only to callers).
        if (msg.ice_servers?.length) this.iceServers = msg.ice_servers.map(toRtcIceServer);
        // We are the later joiner: offer to everyone already in the call.
        for (const id of msg.peers) this.link(id, true);
        break;
      case "peer_left":
        this.dropLink(msg.id);
        break;
      case "peer_updated":
        if (!msg.peer.in_call) this.dropLink(msg.peer.id);
        break;
      case "call_ended":
        this.endCallLocally();
        break;
    }
  }

  // --- chat and presence -------------------------------------------------

  sendChat(text: string, options: { to?: string; attachment?: Attachment } = {}): void {
    // Shown as "sending…" until the server's echo confirms it; typed while
    // the connection is down, it waits and goes out once the room is back.
    this.chatSeq += 1;
    const item = queueChat(this.host, `c${this.chatSeq}`, text, options, false);
    if (item && this.state.status === "joined") this.writeChat(item);
  }

  private writeChat(item: OutgoingChat): void {
    const sent = this.send({
      type: "chat",
      text: item.text,
      rid: item.rid,
      ...(item.to ? { to: item.to } : {}),
      ...(item.attachment ? { attachment: item.attachment } : {}),
    } as ClientMessage);
    if (sent)
      this.update((s) => ({
        ...s,
        outgoing: s.outgoing.map((o) => (o.rid === item.rid ? { ...o, written: true } : o)),
      }));
  }

  /** After a join: messages typed meanwhile go out; one written just
   * before the drop is confirmed by the resumed queue, or offered for retry. */
  private flushOutgoing(resumed: boolean): void {
    const ambiguous: string[] = [];
    for (const item of this.state.outgoing) {
      if (item.status !== "sending") continue;
      if (!item.written) this.writeChat(item);
      else ambiguous.push(item.rid);
    }
    if (ambiguous.length === 0) return;
    const fail = () => this.update((s) => failOutgoing(s, (o) => ambiguous.includes(o.rid)));
    if (resumed) setTimeout(fail, CONFIRM_MS);
    else fail();
  }

  retryChat(rid: string): void {
    const item = takeForRetry(this.host, rid);
    if (item) this.sendChat(item.text, { to: item.to, attachment: item.attachment });
  }

  discardChat(rid: string): void {
    this.update((s) => withoutOutgoing(s, rid));
  }

  setHand(raised: boolean): void {
    gestures.setHand(this.host, raised);
  }

  react(emoji: string): void {
    gestures.react(this.host, emoji);
  }

  setTyping(active: boolean, to?: string): void {
    this.send({ type: "typing", active, ...(to ? { to } : {}) });
  }

  inviteLinks(room: string): Promise<InviteLinks> {
    const web = webLink(this.serverUrl, room, this.accessToken);
    return Promise.resolve({ web, app: appLink(this.serverUrl, room, this.accessToken), fingerprint: null });
  }

  markRead(): void {
    this.update(markedRead);
  }

  dismissError(): void {
    this.update((s) => ({ ...s, error: null }));
  }

  // --- calls ---------------------------------------------------------------

  async joinCall(video: boolean, microphone = true): Promise<void> {
    this.stopPreview();
    this.wantCall = { video };
    await this.startLocalMedia(video);
    // Muted from the first moment: before any member is connected.
    if (!microphone) {
      if (this.microphone) this.microphone.enabled = false;
      this.update((s) => ({ ...s, local: { ...s.local, audio: false } }));
    }
    this.send({ type: "call_join", video });
    this.sendMedia();
  }

  async preview(on: boolean, withVideo = true): Promise<void> {
    this.stopPreview();
    // Only the newest call's devices are kept (a device changed while the
    // last ones were still opening).
    const generation = ++this.previewGeneration;
    if (!on || this.state.inCall) return;
    const devices = this.env.mediaDevices;
    this.update((s) => ({ ...s, preview: { stream: null, level: null } }));
    if (!devices) {
      this.reportMedia(noMediaReason());
      return;
    }
    const { microphone, camera, processing } = this.state.devices;
    const audio = audioConstraints(microphone, processing);
    const video = withVideo && videoConstraints(camera);
    let stream: MediaStream | null = null;
    try {
      stream = await devices.getUserMedia({ audio, video });
    } catch {
      stream = await devices.getUserMedia({ audio, video: false }).catch(() => null);
      if (!stream) this.reportMedia("No microphone or camera available; you can still join, listen and watch.");
    }
    // Closed, or opened anew, while the devices were opening: give them back.
    if (!this.state.preview || generation !== this.previewGeneration) {
      for (const t of stream?.getTracks() ?? []) t.stop();
      return;
    }
    this.previewStream = stream;
    const track = stream?.getAudioTracks()[0] ?? null;
    this.previewMeter = track ? (this.env.meter?.(track) ?? null) : null;
    this.update((s) => ({ ...s, preview: { stream, level: null } }));
    void this.refreshDevices();
  }

  private stopPreview(): void {
    this.previewMeter?.stop();
    this.previewMeter = null;
    for (const t of this.previewStream?.getTracks() ?? []) t.stop();
    this.previewStream = null;
    if (this.state.preview) this.update((s) => ({ ...s, preview: null }));
  }

  leaveCall(): void {
    this.ringer.leavingCall();
    this.send({ type: "call_leave" });
    this.endCallLocally();
  }

  ring(to: string, video: boolean): Promise<void> {
    return this.ringer.ring(to, video);
  }

  cancelRing(): void {
    this.ringer.cancel();
  }

  answer(accept: boolean): Promise<void> {
    return this.ringer.answer(accept);
  }

  private endCallLocally(): void {
    this.wantCall = null;
    this.closeLinks();
    for (const track of [this.microphone, this.camera, this.screen]) track?.stop();
    this.microphone = this.camera = this.screen = null;
    this.meterOn(null);
    this.update((s) => ({ ...leftCall(s), local: { ...s.local, video: false, screen: false, stream: null } }));
  }

  private link(remoteId: string, initiator: boolean): PeerLink | null {
    const self = this.state.self;
    if (!self) return null;
    // Our tracks go only to a member of the call we are in.
    if (!this.inCallWith(remoteId)) return null;
    const existing = this.links.get(remoteId);
    if (existing) return existing;
    const link = new PeerLink(
      {
        selfId: self.id,
        remoteId,
        initiator,
        iceServers: this.iceServers,
        createPeerConnection: this.env.createPeerConnection,
        send: (data) => this.send({ type: "signal", to: remoteId, data }),
        onStream: (stream) =>
          this.update((s) => ({
            ...s,
            remote: { ...s.remote, [remoteId]: { stream, connection: s.remote[remoteId]?.connection ?? "new" } },
          })),
        onConnectionState: (connection) =>
          this.update((s) => ({
            ...s,
            remote: { ...s.remote, [remoteId]: { stream: s.remote[remoteId]?.stream ?? null, connection } },
          })),
        // A path down may mean the machine's address changed, and the
        // signaling socket died with it silently: ask the server at once.
        onPathLost: () => this.signaling.probe(),
        onError: (error) => console.warn(`huddle: peer ${remoteId}:`, error),
      },
      { audio: this.microphone, video: this.screen ?? this.camera },
    );
    this.links.set(remoteId, link);
    this.update((s) => ({
      ...s,
      remote: { ...s.remote, [remoteId]: s.remote[remoteId] ?? { stream: null, connection: "new" } },
    }));
    return link;
  }

  private onSignal(from: string, data: SignalData): void {
    // The server relays any member's signals: whether `from` may see and
    // hear us is decided here, by the room's call state (protocol: a client
    // accepts offers only from call members while in the call itself).
    if (!this.inCallWith(from)) {
      if (this.links.has(from)) this.dropLink(from);
      return;
    }
    let link = this.links.get(from);
    if (!link) {
      // Only an offer opens a link.
      if (!("sdp" in data) || data.sdp.type !== "offer") return;
      link = this.link(from, false) ?? undefined;
    }
    void link?.handle(data);
  }

  /** Whether we and `id` are both in the room's call. */
  private inCallWith(id: string): boolean {
    const s = this.state;
    return s.inCall && s.self?.id !== id && (s.call?.members.includes(id) ?? false);
  }

  private dropLink(id: string): void {
    this.links.get(id)?.close();
    this.links.delete(id);
    this.lastStats.delete(id);
  }

  private closeLinks(): void {
    for (const id of [...this.links.keys()]) this.dropLink(id);
  }

  // --- local media ----------------------------------------------------------

  private async startLocalMedia(video: boolean): Promise<void> {
    const devices = this.env.mediaDevices;
    if (!devices) {
      this.update((s) => ({ ...s, error: { code: "media", message: noMediaReason() } }));
      return;
    }
    const { microphone, camera, processing } = this.state.devices;
    const audio = audioConstraints(microphone, processing);
    let stream: MediaStream | null = null;
    try {
      stream = await devices.getUserMedia({ audio, video: video ? videoConstraints(camera) : false });
    } catch (error) {
      if (video) {
        try {
          stream = await devices.getUserMedia({ audio, video: false });
          this.reportMedia("No camera available; joining with audio only.");
        } catch {
          this.reportMedia("No microphone or camera available; you can still listen and watch.");
        }
      } else {
        this.reportMedia(`No microphone available (${(error as Error).name ?? "error"}); you can still listen.`);
      }
    }
    this.microphone = stream?.getAudioTracks()[0] ?? null;
    this.camera = stream?.getVideoTracks()[0] ?? null;
    if (this.microphone) this.microphone.enabled = this.state.local.audio;
    this.meterOn(this.microphone);
    void this.refreshDevices();
    this.publishLocal();
  }

  private reportMedia(message: string): void {
    this.update((s) => ({ ...s, error: { code: "media", message } }));
  }

  /** The local preview stream and flags from the current tracks. */
  private publishLocal(): void {
    const tracks = [this.microphone, this.screen ?? this.camera].filter((t): t is MediaStreamTrack => t !== null);
    const stream = tracks.length > 0 && typeof MediaStream !== "undefined" ? new MediaStream(tracks) : null;
    this.update((s) => ({
      ...s,
      local: {
        audio: s.local.audio && this.microphone !== null ? true : s.local.audio,
        video: this.camera !== null,
        screen: this.screen !== null,
        stream,
      },
    }));
  }

  private sendMedia(): void {
    const l = this.state.local;
    this.send({ type: "media", audio: l.audio && this.microphone !== null, video: l.video, screen: l.screen });
  }

  setMicrophone(on: boolean): void {
    if (this.microphone) this.microphone.enabled = on;
    this.update((s) => ({ ...s, local: { ...s.local, audio: on } }));
    this.sendMedia();
  }

  async setCamera(on: boolean): Promise<void> {
    if (on && !this.camera) {
      const camera = this.state.devices.camera;
      try {
        const stream = await this.env.mediaDevices?.getUserMedia({
          video: videoConstraints(camera),
        });
        this.camera = stream?.getVideoTracks()[0] ?? null;
      } catch {
        this.reportMedia("The camera could not be started.");
      }
    } else if (!on && this.camera) {
      this.camera.stop();
      this.camera = null;
    }
    if (!this.screen) await this.setLinkTracks("video", this.camera);
    this.publishLocal();
    this.sendMedia();
  }

  async setScreenShare(on: boolean): Promise<void> {
    if (on && !this.screen) {
      try {
        const stream = await this.env.mediaDevices?.getDisplayMedia({ video: true, audio: false });
        this.screen = stream?.getVideoTracks()[0] ?? null;
        // The browser's own "stop sharing" button ends the track.
        if (this.screen) this.screen.onended = () => void this.setScreenShare(false);
      } catch {
        this.reportMedia("Screen sharing was not started.");
      }
    } else if (!on && this.screen) {
      this.screen.onended = null;
      this.screen.stop();
      this.screen = null;
    }
    // The screen replaces the camera on the same sender: no renegotiation.
    await this.setLinkTracks("video", this.screen ?? this.camera);
    this.publishLocal();
    this.sendMedia();
  }

  private async setLinkTracks(kind: "audio" | "video", track: MediaStreamTrack | null): Promise<void> {
    await Promise.all([...this.links.values()].map((l) => l.setTrack(kind, track)));
  }

  async selectDevice(kind: "microphone" | "camera" | "speaker", id: string): Promise<void> {
    this.update((s) => ({ ...s, devices: { ...s.devices, [kind]: id } }));
    // The check before a call opens the chosen devices anew.
    if (this.state.preview && kind !== "speaker")
      return this.preview(true, (this.previewStream?.getVideoTracks().length ?? 0) > 0);
    if (!this.state.inCall || kind === "speaker") return;
    const devices = this.env.mediaDevices;
    if (!devices) return;
    try {
      if (kind === "microphone") {
        await this.reopenMicrophone(devices);
      } else if (this.camera) {
        const stream = await devices.getUserMedia({ video: videoConstraints(id) });
        this.camera.stop();
        this.camera = stream.getVideoTracks()[0] ?? null;
        if (!this.screen) await this.setLinkTracks("video", this.camera);
      }
      this.publishLocal();
    } catch {
      this.reportMedia(`That ${kind} could not be opened.`);
    }
  }

  async setAudioProcessing(processing: AudioProcessing): Promise<void> {
    this.update((s) => ({ ...s, devices: { ...s.devices, processing } }));
    const devices = this.env.mediaDevices;
    if (!this.microphone || !devices) return;
    // Chromium takes applyConstraints' processing flags and changes nothing
    // (measured: noiseSuppression stayed true), so the microphone is opened
    // anew with them, as for another device.
    try {
      await this.reopenMicrophone(devices);
      this.publishLocal();
    } catch {
      this.reportMedia("The microphone could not be opened with that processing.");
    }
  }

  /** Opens the chosen microphone with the chosen processing in place of
   * the one in use. The old track (and the meter's clone of it) is stopped
   * first: while any track holds the device, Chromium opens it again with
   * the processing it already has (measured: constraints said
   * noiseSuppression false, the settings true). */
  private async reopenMicrophone(devices: NonNullable<BrowserEnvironment["mediaDevices"]>): Promise<void> {
    const { microphone, processing } = this.state.devices;
    this.meterOn(null);
    this.microphone?.stop();
    this.microphone = null;
    let stream: MediaStream;
    try {
      stream = await devices.getUserMedia({ audio: audioConstraints(microphone, processing) });
    } catch (error) {
      // The old track is gone: the others get no audio rather than an ended track.
      await this.setLinkTracks("audio", null);
      this.publishLocal();
      throw error;
    }
    const track = stream.getAudioTracks()[0] ?? null;
    if (track) track.enabled = this.state.local.audio;
    this.microphone = track;
    this.meterOn(track);
    await this.setLinkTracks("audio", track);
  }

  /** Measures `track` (null: nothing) for the talking-while-muted hint. */
  private meterOn(track: MediaStreamTrack | null): void {
    this.meter?.stop();
    this.meter = track ? (this.env.meter?.(track) ?? null) : null;
    this.voice = new VoiceDetector();
    if (this.state.talking) this.update((s) => ({ ...s, talking: false }));
  }

  private listen(): void {
    const check = this.previewMeter;
    if (check && this.state.preview) {
      const level = Math.round(check.level());
      if (level !== this.state.preview.level)
        this.update((s) => (s.preview ? { ...s, preview: { ...s.preview, level } } : s));
    }
    if (!this.meter) return;
    const talking = this.voice.update(this.meter.level(), VOICE_STEP_MS);
    if (talking !== this.state.talking) this.update((s) => ({ ...s, talking }));
  }

  private async refreshDevices(): Promise<void> {
    const devices = this.env.mediaDevices;
    if (!devices) return;
    try {
      const all = await devices.enumerateDevices();
      this.update((s) => ({
        ...s,
        devices: {
          ...s.devices,
          microphones: all.filter((d) => d.kind === "audioinput"),
          cameras: all.filter((d) => d.kind === "videoinput"),
          speakers: all.filter((d) => d.kind === "audiooutput"),
        },
      }));
    } catch {
      // Device lists are a convenience; calls work without them.
    }
  }

  // --- clocks -----------------------------------------------------------------

  private tick(): void {
    this.update((s) => expireShown(s, this.env.now()));
    this.ringer.tick();
  }

  private async pollStats(): Promise<void> {
    const stats: Record<string, PeerStats> = {};
    let loudest: { id: string; level: number } | null = null;
    for (const [id, link] of this.links) {
      try {
        const report = await link.pc.getStats();
        const { stats: figures, sample } = collectStats(report, this.lastStats.get(id) ?? null);
        this.lastStats.set(id, sample);
        link.noteHeard(sample.heard, this.env.now());
        stats[id] = figures;
        if (figures.audioLevel > 0.02 && (!loudest || figures.audioLevel > loudest.level))
          loudest = { id, level: figures.audioLevel };
      } catch {
        // A closing connection has no stats.
      }
    }
    this.update((s) => ({ ...s, stats, speaker: loudest?.id ?? null }));
  }

  /** Stops everything (page unload, tests). */
  dispose(): void {
    for (const t of this.timers) clearInterval(t);
    this.endCallLocally();
    this.signaling.close();
  }
}

/** Why the page has no camera and microphone, and what to do about it. */
function noMediaReason(): string {
  if (typeof window !== "undefined" && window.isSecureContext === false) {
    return `Camera and microphone need a secure page, and ${location.protocol}//${location.host} is not one (browsers allow them only over https:// or on localhost). Open the https:// link of this room; until then you can listen and watch.`;
  }
  return "This browser gives no access to microphone or camera; you can still listen and watch.";
}

function toRtcIceServer(server: IceServer): RTCIceServer {
  return {
    urls: server.urls,
    ...(server.username ? { username: server.username } : {}),
    ...(server.credential ? { credential: server.credential } : {}),
  };
}

/** The camera's constraints: the chosen device (`null`: the default), 720p if it can. */
export function videoConstraints(camera: string | null): MediaTrackConstraints {
  return { width: { ideal: 1280 }, height: { ideal: 720 }, ...(camera ? { deviceId: { exact: camera } } : {}) };
}

/** The microphone's constraints: the chosen device (`null`: the default)
 * and the processing asked for. */
export function audioConstraints(microphone: string | null, processing: AudioProcessing): MediaTrackConstraints {
  return { ...(microphone ? { deviceId: { exact: microphone } } : {}), ...processing };
}
