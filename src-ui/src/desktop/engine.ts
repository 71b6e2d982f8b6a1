// The desktop app's engine: the same `Engine` the browser UI codes against,
// over the native `huddle-engine` in the Rust shell. Signaling, WebRTC,
// capture, codecs and playback all run natively; this class keeps the UI
// state (with the browser engine's pure transitions in ../engine/session)
// and turns user actions into shell commands.

import { ObservableState } from "../engine/observable";
import type { Attachment, ClientMessage } from "../protocol";
import { expireShown, initialState, leftCall, markedRead } from "../engine/session";
import * as gestures from "../engine/gestures";
import { Ringer, type RingHost } from "../engine/ringer";
import { CONFIRM_MS, failOutgoing, queueChat, takeForRetry, withoutOutgoing } from "../engine/outgoing";
import { webLink, type InviteLinks } from "../engine/invite";
import {
  DEFAULT_PROCESSING,
  type AudioProcessing,
  type DesktopActions,
  type Engine,
  type JoinRequest,
} from "../engine/types";
import type { Device, DeviceList, HostInfo, JoinLink, Settings, UiEvent } from "./bindings";
import { isCommandError, type DesktopIpc, type ServerAccess } from "./ipc";
import { applyUiEvent, initialDesktop } from "./events";
import { drawPictures } from "./pictures";

/** Figures of one tile, for tests and the benchmark. */
export interface TileFigures {
  rendered: number;
  /** The shell's count of pictures sent to this tile, and of pictures it dropped because the tile was still drawing. */
  sent: number;
  dropped: number;
  width: number;
  height: number;
  /** Decoder → canvas, per picture (ms), the last few hundred. */
  delays: number[];
  /** Decoder → arrival in the window (ms): the transport's share of `delays`. */
  arrivals: number[];
  /** Drawing one picture (ms). */
  draws: number[];
}

/** The renderer to use: forced for comparisons (`localStorage["huddle.renderer"]`), else by how the page is painted. */
function rendererPreference(softwarePainting: boolean): "webgl" | "2d" {
  const forced = localStorage.getItem("huddle.renderer");
  if (forced === "webgl" || forced === "2d") return forced;
  return softwarePainting ? "2d" : "webgl";
}

function keep(values: number[], value: number): void {
  values.push(value);
  if (values.length > MAX_DELAYS) values.splice(0, values.length - MAX_DELAYS);
}

const MAX_DELAYS = 600;

function asMediaDevices(list: Device[], kind: MediaDeviceKind): MediaDeviceInfo[] {
  return list.map((d) => ({ deviceId: d.id, groupId: "", kind, label: d.name, toJSON: () => d }));
}

function chosen(list: Device[], id: string | null): string | null {
  return id && list.some((d) => d.id === id) ? id : (list.find((d) => d.is_default)?.id ?? list[0]?.id ?? null);
}

export class DesktopEngine extends ObservableState implements Engine {
  private settings: Settings | null = null;
  private softwarePainting = false;
  private request: JoinRequest | null = null;
  /** A link opened during a membership, for the lobby once it is left. */
  private pendingLink: JoinLink | null = null;
  /** What the current server's link grants (from a link, or the hosted
   * server's): its access token and the fingerprint of its certificate.
   * Never saved: the link is the passcode. */
  private access: ServerAccess = NO_ACCESS;
  /** A link to another server, while the user is asked about it. */
  private linkWaiting: JoinLink | null = null;
  private watching = false;
  private tiles = new Map<string, TileFigures>();
  private chatSeq = 0;
  /** What the picture-in-picture window was last pointed at (null: closed). */
  private pipShows: string | null = null;
  /** When the room was last joined (or resumed): queued messages go out then. */
  private joinedAt = 0;
  private timer: ReturnType<typeof setInterval>;
  /** What the shared ring and gesture code calls back into. */
  private readonly host: RingHost = {
    current: () => this.state,
    set: (state) => this.update(() => state),
    send: (message) => this.send(message),
    joinCall: (video) => this.joinCall(video),
    leaveCall: () => this.leaveCall(),
    now: () => Date.now(),
  };
  private readonly ringer = new Ringer(this.host);
  /** Resolves once the shell answered `attach`. */
  readonly ready: Promise<void>;

  constructor(private readonly ipc: DesktopIpc) {
    super({ ...initialState(), desktop: initialDesktop() });
    this.timer = setInterval(() => {
      this.update((s) => expireShown(s, Date.now()));
      this.ringer.tick();
      this.expireOutgoing(Date.now());
    }, 1000);
    this.ready = this.ipc
      .attach((event) => this.onEvent(event))
      .then((startup) => {
        this.settings = startup.settings;
        this.access =
          startup.hosting && startup.hosting.serverUrl === startup.settings.serverUrl
            ? hostedAccess(startup.hosting)
            : NO_ACCESS;
        this.softwarePainting = startup.softwarePainting;
        this.setDevices(startup.devices);
        this.update((s) => ({
          ...s,
          desktop: {
            server: startup.settings.serverUrl,
            hosting: startup.hosting,
            confirmClose: false,
            volume: startup.settings.volume,
            screenShareUnavailable: startup.screenShareUnavailable,
            screenSoundUnavailable: startup.screenSoundUnavailable,
            shareSound: startup.settings.shareSound,
            openedLink: null,
            linkPrompt: null,
            focused: true,
            pip: false,
          },
        }));
        if (startup.link) this.openLink(startup.link);
      });
  }

  private fail(e: unknown, code: "connection" | "media" = "connection"): void {
    const message = isCommandError(e) ? e.message : String(e);
    this.update((s) => ({ ...s, error: { code, message } }));
  }

  /** The settings as the UI last saw them (for the lobby's storage). */
  currentSettings(): Settings | null {
    return this.settings;
  }

  saveSettings(change: (s: Settings) => Settings): void {
    if (!this.settings) return;
    this.settings = change(this.settings);
    void this.ipc.saveSettings(this.settings).catch((e) => this.fail(e));
  }

  /** Per-tile figures: pictures drawn, size, shell-to-canvas delays. */
  tileFigures(): Record<string, TileFigures> {
    return Object.fromEntries(this.tiles);
  }

  // --- events from the shell ---------------------------------------------

  private onEvent(event: UiEvent): void {
    // What the event does besides changing the state; the state's change is
    // `applyUiEvent`'s.
    switch (event.type) {
      case "server":
        if (event.message.type === "joined") this.joinedAt = Date.now();
        this.ringer.receive(event.message);
        return;
      case "stopped":
        // A refused join forgets its request (the lobby shows the reason).
        if (!["left", "gave_up", "closed"].includes(event.reason.code)) this.request = null;
        break;
      case "open_link":
        this.openLink(event.link);
        return;
      case "devices":
        this.setDevices(event.devices);
        return;
      case "pip_closed":
        this.pipShows = null;
        break;
    }
    const tile = event.type === "stats" ? this.tiles.get(event.peer) : undefined;
    this.update((s) => applyUiEvent(s, event, tile));
  }

  private setDevices(list: DeviceList): void {
    const s = this.settings;
    this.update((state) => ({
      ...state,
      devices: {
        cameras: asMediaDevices(list.cameras, "videoinput"),
        microphones: asMediaDevices(list.microphones, "audioinput"),
        speakers: asMediaDevices(list.speakers, "audiooutput"),
        camera: chosen(list.cameras, s?.camera ?? null),
        microphone: chosen(list.microphones, s?.microphone ?? null),
        speaker: chosen(list.speakers, s?.speaker ?? null),
        processing: s?.audioProcessing ?? DEFAULT_PROCESSING,
      },
    }));
  }

  /** Opens a `huddle://` link's join screen; in a room, it waits until
   * the room is left (the call is not cut by a click elsewhere). */
  private openLink(link: JoinLink): void {
    const { server, room } = link;
    if (this.state.status !== "idle" && this.state.status !== "connecting") {
      this.pendingLink = link;
      this.update((s) => ({
        ...s,
        error: { code: "link", message: `Leave this room to join “${room}” from the link you opened.` },
      }));
      return;
    }
    if (hostOf(server) !== hostOf(this.state.desktop?.server ?? "")) {
      // Another server: say which, and go only if the user agrees.
      this.linkWaiting = link;
      this.update((s) =>
        s.desktop ? { ...s, desktop: { ...s.desktop, linkPrompt: { host: hostOf(server), room } } } : s,
      );
      return;
    }
    // The same server (perhaps written another way).
    this.setServer(server, linkAccess(link));
    this.showLinkRoom(link);
  }

  /** Opens the lobby on a link's room, on the current server. */
  private showLinkRoom(link: JoinLink): void {
    const room = link.room;
    if (link.token || link.fingerprint) this.access = linkAccess(link);
    if (this.watching) this.watchRooms(true);
    // The lobby is shown anew for each link, with its room filled in.
    this.update((s) => ({
      ...s,
      error: null,
      desktop: s.desktop
        ? { ...s.desktop, openedLink: { room, seq: (s.desktop.openedLink?.seq ?? 0) + 1 } }
        : s.desktop,
    }));
  }

  // --- lobby and membership ---------------------------------------------

  watchRooms(on: boolean): void {
    this.watching = on;
    const server = this.state.desktop?.server ?? "";
    void this.ipc
      .watchRooms(on && server ? server : null, this.access)
      .catch(() => this.update((s) => ({ ...s, rooms: null })));
  }

  join(request: JoinRequest): void {
    const server = this.state.desktop?.server ?? "";
    if (!server) {
      this.update((s) => ({
        ...s,
        error: { code: "connection", message: "Enter a server address, or host a room on this computer." },
      }));
      return;
    }
    this.request = request;
    this.update((s) => ({ ...s, status: "connecting", error: null }));
    this.ipc
      .join({ server, room: request.room, name: request.name, password: request.password ?? null, ...this.access })
      .catch((e) => {
        this.request = null;
        this.update((s) => ({ ...s, status: "idle" }));
        this.fail(e);
      });
  }

  leave(): void {
    this.request = null;
    void this.ipc.leave();
    this.update((s) => ({ ...initialState(), rooms: s.rooms, devices: s.devices, desktop: s.desktop }));
    const link = this.pendingLink;
    this.pendingLink = null;
    if (link) this.openLink(link);
    if (this.watching) this.watchRooms(true);
  }

  retry(): void {
    const request = this.request;
    if (!request) return;
    this.update((s) => ({ ...s, status: "reconnecting", error: null }));
    this.join(request);
  }

  // --- chat and presence -------------------------------------------------

  private send(message: ClientMessage): void {
    this.ipc.send(message).catch((e) => this.fail(e));
  }

  sendChat(text: string, options: { to?: string; attachment?: Attachment } = {}): void {
    // "Sending…" until the server's echo confirms it. The native engine
    // holds what is sent while it reconnects and sends it on resume; a
    // message it could not deliver is offered for retry, never lost silently.
    this.chatSeq += 1;
    const item = queueChat(this.host, `d${this.chatSeq}`, text, options, true);
    if (!item) return;
    this.ipc
      .send({
        type: "chat",
        text,
        ...(options.to ? { to: options.to } : {}),
        ...(options.attachment ? { attachment: options.attachment } : {}),
      } as ClientMessage)
      .catch(() => this.update((s) => failOutgoing(s, (o) => o.rid === item.rid)));
  }

  retryChat(rid: string): void {
    const item = takeForRetry(this.host, rid);
    if (item) this.sendChat(item.text, { to: item.to, attachment: item.attachment });
  }

  discardChat(rid: string): void {
    this.update((s) => withoutOutgoing(s, rid));
  }

  /** A message unconfirmed for CONFIRM_MS while the room is joined did not arrive. */
  private expireOutgoing(now: number): void {
    if (this.state.status !== "joined") return;
    this.update((s) => failOutgoing(s, (o) => now - Math.max(o.ts, this.joinedAt) > CONFIRM_MS));
  }

  setHand(raised: boolean): void {
    gestures.setHand(this.host, raised);
  }

  react(emoji: string): void {
    gestures.react(this.host, emoji);
  }

  setTyping(active: boolean, to?: string): void {
    this.send({ type: "typing", active, ...(to ? { to } : {}) } as ClientMessage);
  }

  async inviteLinks(room: string): Promise<InviteLinks> {
    const server = this.state.desktop?.server ?? "";
    const hosting = this.state.desktop?.hosting;
    const app = await this.ipc.joinLink(server, room, this.access);
    if (hosting && hosting.serverUrl === server) {
      // The token rides in the fragment: browsers send it neither to the
      // server nor in Referer; the page hands it over in `join`.
      const web = `${hosting.webUrl}r/${encodeURIComponent(room)}#token=${encodeURIComponent(hosting.token)}`;
      return { web, app, fingerprint: hosting.fingerprint };
    }
    // The shell normalized the server as typed into the link's WebSocket address.
    const ws = new URL(app).searchParams.get("server") ?? "";
    return { web: webLink(ws, room, this.access.token), app, fingerprint: null };
  }

  dismissError(): void {
    this.update((s) => (s.error ? { ...s, error: null } : s));
  }

  markRead(): void {
    this.update(markedRead);
  }

  // --- calls ---------------------------------------------------------------

  async joinCall(video: boolean, microphone = true): Promise<void> {
    // The check's devices are opened anew by the call (the shell reuses nothing).
    this.update((s) => ({ ...s, preview: null, local: { ...s.local, audio: microphone, video, screen: false } }));
    try {
      await this.ipc.joinCall(video);
      // Muted from the first moment: the shell mutes before any member is connected.
      if (!microphone) await this.ipc.setMicrophone(false);
    } catch (e) {
      this.fail(e, "media");
    }
  }

  async preview(on: boolean, video = true): Promise<void> {
    if (this.state.inCall) return;
    this.update((s) => ({ ...s, preview: on ? { stream: null, level: null } : null }));
    await this.ipc.preview(on, video).catch((e) => this.fail(e, "media"));
  }

  leaveCall(): void {
    this.ringer.leavingCall();
    void this.ipc.leaveCall().catch((e) => this.fail(e));
    // The shell closes the picture-in-picture window with the call.
    this.pipShows = null;
    this.update((s) => ({
      ...leftCall(s),
      local: { ...s.local, video: false, screen: false },
      desktop: s.desktop ? { ...s.desktop, pip: false } : s.desktop,
    }));
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

  setMicrophone(on: boolean): void {
    this.update((s) => ({ ...s, local: { ...s.local, audio: on } }));
    void this.ipc.setMicrophone(on).catch((e) => this.fail(e, "media"));
  }

  async setCamera(on: boolean): Promise<void> {
    this.update((s) => ({ ...s, local: { ...s.local, video: on } }));
    await this.ipc.setCamera(on).catch((e) => this.fail(e, "media"));
  }

  /** Shares the screen natively in place of the camera; a screen that
   * cannot be captured comes back as `device_failed` (screen). */
  async setScreenShare(on: boolean): Promise<void> {
    this.update((s) => ({ ...s, local: { ...s.local, screen: on } }));
    await this.ipc.setScreenShare(on).catch((e) => {
      this.update((s) => ({ ...s, local: { ...s.local, screen: false } }));
      this.fail(e, "media");
    });
  }

  async setAudioProcessing(processing: AudioProcessing): Promise<void> {
    this.update((s) => ({ ...s, devices: { ...s.devices, processing } }));
    // The shell applies it to the call at once, and keeps it.
    this.saveSettings((s) => ({ ...s, audioProcessing: processing }));
  }

  async selectDevice(kind: "microphone" | "camera" | "speaker", id: string): Promise<void> {
    this.saveSettings((s) => ({ ...s, [kind]: id }));
    this.update((s) => ({ ...s, devices: { ...s.devices, [kind]: id } }));
    await this.ipc.selectDevice(kind, id).catch((e) => this.fail(e, "media"));
  }

  // --- desktop only -------------------------------------------------------

  /** Points the app at `server`, with what its link grants. */
  setServer(server: string, access: ServerAccess = NO_ACCESS): void {
    this.access = access;
    // Another server's rooms are not this one's: the list comes anew.
    const changed = server !== this.state.desktop?.server;
    this.update((s) => (s.desktop ? { ...s, rooms: changed ? null : s.rooms, desktop: { ...s.desktop, server } } : s));
    this.saveSettings((s) => ({ ...s, serverUrl: server }));
    if (this.watching) this.watchRooms(true);
  }

  readonly desktop: DesktopActions = {
    setServer: (server) => this.setServer(server),
    host: async () => {
      try {
        const info = await this.ipc.host();
        this.update((s) => (s.desktop ? { ...s, desktop: { ...s.desktop, hosting: info } } : s));
        this.setServer(info.serverUrl, hostedAccess(info));
      } catch (e) {
        this.fail(e);
      }
    },
    stopHosting: async () => {
      const hosting = this.state.desktop?.hosting;
      try {
        await this.ipc.stopHosting();
      } catch (e) {
        this.fail(e);
        return;
      }
      this.update((s) => (s.desktop ? { ...s, desktop: { ...s.desktop, hosting: null } } : s));
      if (hosting && this.state.desktop?.server === hosting.serverUrl) this.setServer("");
    },
    answerLink: (accept) => {
      const link = this.linkWaiting;
      this.linkWaiting = null;
      this.update((s) => (s.desktop ? { ...s, desktop: { ...s.desktop, linkPrompt: null } } : s));
      if (!accept || !link) return;
      this.setServer(link.server, linkAccess(link));
      this.showLinkRoom(link);
    },
    joinLink: (room) => this.ipc.joinLink(this.state.desktop?.server ?? "", room, this.access),
    setVolume: (volume) => {
      this.update((s) => (s.desktop ? { ...s, desktop: { ...s.desktop, volume } } : s));
      this.saveSettings((s) => ({ ...s, volume }));
    },
    setShareSound: (shareSound) => {
      this.update((s) => (s.desktop ? { ...s, desktop: { ...s.desktop, shareSound } } : s));
      this.saveSettings((s) => ({ ...s, shareSound }));
    },
    confirmClose: (close) => {
      this.update((s) => (s.desktop ? { ...s, desktop: { ...s.desktop, confirmClose: false } } : s));
      if (close) void this.ipc.quit();
    },
    attachVideo: (member, canvas) => this.attachVideo(member, canvas),
    pip: (target) => this.pip(target),
    // Without a notification service the chime and the prompt remain.
    notify: (title, body) => void this.ipc.notify(title, body).catch((e) => console.warn("no notification:", e)),
  };

  /**
   * Draws `member`'s pictures on `canvas`: asks the shell for the next
   * picture each time the last one is drawn (the shell keeps only the
   * newest, so a slow window skips pictures instead of queueing them).
   */
  /** The picture-in-picture window: opened or pointed at `target`, or closed. */
  private pip(target: { member: string; name: string } | null): void {
    // Asked again for what it shows already (the window follows the spotlight): nothing to do.
    const key = target && `${target.member}\n${target.name}`;
    if (key === this.pipShows) return;
    this.pipShows = key;
    this.update((s) => (s.desktop ? { ...s, desktop: { ...s.desktop, pip: target !== null } } : s));
    const done = target ? this.ipc.pipShow(target) : this.ipc.pipClose();
    done.catch((e) => {
      this.pipShows = null;
      this.update((s) => (s.desktop ? { ...s, desktop: { ...s.desktop, pip: false } } : s));
      this.fail(e, "media");
    });
  }

  private attachVideo(member: string, canvas: HTMLCanvasElement): () => void {
    const figures: TileFigures = this.tiles.get(member) ?? {
      rendered: 0,
      sent: 0,
      dropped: 0,
      width: 0,
      height: 0,
      delays: [],
      arrivals: [],
      draws: [],
    };
    this.tiles.set(member, figures);
    let stop: (() => void) | null = null;
    let open = true;
    void this.ipc.openTile(member).then(() => {
      if (!open) return;
      stop = drawPictures(
        this.ipc,
        member,
        canvas,
        rendererPreference(this.softwarePainting),
        (picture, drawMs, arrived) => {
          keep(figures.draws, drawMs);
          figures.rendered += 1;
          figures.sent = picture.sent;
          figures.dropped = picture.dropped;
          figures.width = picture.width;
          figures.height = picture.height;
          keep(figures.arrivals, arrived - picture.decodedAt);
          keep(figures.delays, Date.now() - picture.decodedAt);
        },
      );
    });
    return () => {
      open = false;
      stop?.();
      void this.ipc.closeTile(member);
    };
  }

  dispose(): void {
    clearInterval(this.timer);
  }
}

/** The host (and port) of a server address, as the user should see it. */
const NO_ACCESS: ServerAccess = { token: null, fingerprint: null };

function linkAccess(link: JoinLink): ServerAccess {
  return { token: link.token, fingerprint: link.fingerprint };
}

function hostedAccess(info: HostInfo): ServerAccess {
  return { token: info.token, fingerprint: info.fingerprint };
}

function hostOf(server: string): string {
  try {
    return new URL(server).host || server;
  } catch {
    return server;
  }
}
