// The one interface every UI component codes against. The browser
// implementation (WebSocket + RTCPeerConnection) is `BrowserEngine`; the
// desktop app provides a native one. No component touches a socket or a
// peer connection.

import type { Attachment, ErrorCode, Media, Peer, RoomSummary, ServerLimits } from "../protocol";
import type { InviteLinks } from "./invite";

/** Where the signaling connection is. */
export type ConnectionStatus =
  | "idle" // in the lobby, not joined
  | "connecting" // opening the socket / waiting for `joined`
  | "joined"
  | "reconnecting" // the socket dropped; trying to resume
  | "offline"; // gave up: shown with an error and a retry button

/** One line of the chat view. */
export type ChatLine =
  | {
      kind: "chat";
      id: string;
      from: string;
      fromName: string;
      to?: string;
      toName?: string;
      text: string;
      ts: number;
      attachment?: Attachment;
      own: boolean;
    }
  | { kind: "system"; id: string; text: string; ts: number };

/** A chat message of ours the server has not confirmed yet (its echo with
 * our `rid` is the confirmation). Nothing typed is dropped silently: it is
 * "sending" until confirmed, or "failed" with a retry. */
export interface OutgoingChat {
  rid: string;
  text: string;
  to?: string;
  toName?: string;
  attachment?: Attachment;
  ts: number;
  status: "sending" | "failed";
  /** Written to a socket (if that socket then dropped, only the resumed
   * queue can tell whether the server got it); false: typed while down. */
  written: boolean;
}

/** Something asking the user to answer (`since`: when it came, ms). */
export type Prompt =
  | { kind: "call"; by: string; byName: string; video: boolean; since: number }
  | { kind: "ring"; from: string; fromName: string; video: boolean; since: number };

/** Our ring to a member, until it is answered, declined, cancelled or times out. */
export interface OutgoingRing {
  to: string;
  toName: string;
  video: boolean;
  since: number;
}

/** A remote call member as the UI shows it. */
export interface RemoteMedia {
  stream: MediaStream | null;
  /** RTCPeerConnectionState, or "new" before there is one. */
  connection: string;
}

/** Figures per remote peer, refreshed every second while in a call. */
export interface PeerStats {
  bitrateInKbps: number;
  bitrateOutKbps: number;
  fps: number;
  framesDecoded: number;
  width: number;
  height: number;
  rttMs: number | null;
  lossPercent: number;
  codec: string;
  audioLevel: number;
  candidateType: string;
  /** The member's audio playout since it started: the share concealed
   * (0–100) and the mean delay in the jitter buffer, ms (absent until audio
   * came). */
  audioConcealedPercent?: number;
  audioDelayMs?: number;
  /** Keyframes of the member's video decoded, and asked of it (PLI), since
   * the call began (absent where not counted). */
  keyframesDecoded?: number;
  keyframesRequested?: number;
}

/** What is done to the microphone's sound before it is sent (the names
 * `getUserMedia` constraints use); all on by default. */
export interface AudioProcessing {
  echoCancellation: boolean;
  noiseSuppression: boolean;
  autoGainControl: boolean;
}

export const DEFAULT_PROCESSING: AudioProcessing = {
  echoCancellation: true,
  noiseSuppression: true,
  autoGainControl: true,
};

export interface Devices {
  microphones: MediaDeviceInfo[];
  cameras: MediaDeviceInfo[];
  speakers: MediaDeviceInfo[];
  microphone: string | null;
  camera: string | null;
  speaker: string | null;
  processing: AudioProcessing;
}

/** A reaction on screen until `until` (ms). */
export interface ShownReaction {
  id: string;
  from: string;
  emoji: string;
  until: number;
}

/** A user-facing error: the server's code (or a client-side one) and what to show. */
export interface EngineError {
  code: ErrorCode | "connection" | "media" | "attachment" | "link";
  message: string;
}

export interface EngineState {
  status: ConnectionStatus;
  error: EngineError | null;
  /** The lobby's live room list; null when the server does not offer one. */
  rooms: RoomSummary[] | null;
  self: Peer | null;
  room: { name: string; locked: boolean } | null;
  /** The other members, in the order they joined. */
  members: Peer[];
  /** Who is typing (member id → when the indicator expires, ms). */
  typing: Record<string, number>;
  chat: ChatLine[];
  /** Our messages not yet confirmed, oldest first (shown after the chat). */
  outgoing: OutgoingChat[];
  unread: number;
  /** The first chat line not yet read, while there is one. */
  firstUnread: string | null;
  /** The room's call: when it started and who is in it (ids, self included). */
  call: { startedAt: number; members: string[] } | null;
  /** Whether this client is in the call. */
  inCall: boolean;
  prompt: Prompt | null;
  /** Whom we are ringing ("Calling Grace…"), while we are. */
  outgoingRing: OutgoingRing | null;
  local: Media & { stream: MediaStream | null };
  remote: Record<string, RemoteMedia>;
  stats: Record<string, PeerStats>;
  /** The member currently speaking loudest, if anyone is. */
  speaker: string | null;
  /** The device check before a call, while it is open: the camera's
   * pictures (a stream in browsers; the desktop draws the `self` tile) and
   * the microphone's level (dBFS; null until measured). */
  preview: { stream: MediaStream | null; level: number | null } | null;
  /** Reactions on screen, oldest first, at most one per member. */
  reactions: ShownReaction[];
  /** Whether our own microphone hears voice, sent or not (the desktop
   * engine's voice activity; in a browser, a level meter on a clone of the
   * microphone's track). */
  talking: boolean;
  devices: Devices;
  limits: ServerLimits | null;
  /** What only the desktop app has (absent in browsers). */
  desktop?: DesktopState;
}

/** The desktop app's own state: where it connects, and what it hosts. */
export interface DesktopState {
  /** The server as the user typed it (empty: none yet). */
  server: string;
  /** The in-process server this app hosts, once "Host a room" was used. */
  hosting: { serverUrl: string; webUrl: string; token: string; fingerprint: string } | null;
  /** The window's close button was pressed during a call. */
  confirmClose: boolean;
  /** Playback volume, 0–1. */
  volume: number;
  /** Why the screen cannot be shared here (null: it can be tried). */
  screenShareUnavailable: string | null;
  /** Why the computer's sound cannot go with a shared screen here (null:
   * the choice is offered). */
  screenSoundUnavailable: string | null;
  /** Whether a shared screen takes the computer's sound with it. */
  shareSound: boolean;
  /** The last `huddle://` link opened (`seq` counts them): the lobby is
   * shown anew for each, its room filled in. */
  openedLink: { room: string; seq: number } | null;
  /** A link to a room on another server than the current one, waiting for
   * the user to agree (a link must not move anyone to a server silently). */
  linkPrompt: { host: string; room: string } | null;
  /** Whether the app's window has the keyboard focus (the shell says). */
  focused: boolean;
  /** Whether the picture-in-picture window is open. */
  pip: boolean;
}

/** What only the desktop app can do. */
export interface DesktopActions {
  setServer(server: string): void;
  /** Starts the in-process server (once) and points this app at it. */
  host(): Promise<void>;
  /** Stops the in-process server (its links stop working). */
  stopHosting(): Promise<void>;
  /** Answers the link prompt: `true` goes to the link's server and room. */
  answerLink(accept: boolean): void;
  /** The `huddle://` link that opens the app on this room. */
  joinLink(room: string): Promise<string>;
  setVolume(volume: number): void;
  /** Whether the next screen shared takes the computer's sound with it
   * (kept in the settings). */
  setShareSound(on: boolean): void;
  /** Answers the close question: `true` closes the app. */
  confirmClose(close: boolean): void;
  /** Opens the always-on-top picture-in-picture window on a call member
   * (`self`: our own view) and points it elsewhere on later calls, or
   * closes it (`null`). */
  pip(target: { member: string; name: string } | null): void;
  /** Shows `member`'s pictures on `canvas` until the returned function is called. */
  attachVideo(member: string, canvas: HTMLCanvasElement): () => void;
  /** A desktop notification through the system's service (the page's own
   * `Notification` is denied inside the app's web view). */
  notify(title: string, body: string): void;
}

export interface JoinRequest {
  room: string;
  name: string;
  password?: string;
}

export interface Engine {
  getState(): EngineState;
  subscribe(listener: () => void): () => void;

  watchRooms(on: boolean): void;
  join(request: JoinRequest): void;
  leave(): void;
  /** Reconnects now, after the engine gave up ("offline"). */
  retry(): void;

  sendChat(text: string, options?: { to?: string; attachment?: Attachment }): void;
  /** Sends a failed message again. */
  retryChat(rid: string): void;
  /** Gives up on a failed message. */
  discardChat(rid: string): void;
  setTyping(active: boolean, to?: string): void;
  markRead(): void;
  /** Hides the error banner (the user read it). */
  dismissError(): void;
  /** The links that bring someone into `room`. */
  inviteLinks(room: string): Promise<InviteLinks>;

  /** Joins the room's call, with the camera or not, and the microphone
   * on (default) or muted from the first moment. */
  joinCall(video: boolean, microphone?: boolean): Promise<void>;
  /** Opens the camera and microphone for the check before a call (`on`),
   * or releases them; nothing is sent. */
  preview(on: boolean, video?: boolean): Promise<void>;
  leaveCall(): void;
  /** Rings `to`: joins the call (starting it if need be) and shows "Calling…" until answered. */
  ring(to: string, video: boolean): Promise<void>;
  /** Stops ringing (the callee's prompt goes away; alone in the call, we leave it). */
  cancelRing(): void;
  answer(accept: boolean): Promise<void>;
  /** Raises or lowers our hand. */
  setHand(raised: boolean): void;
  /** Sends a reaction (one of session's REACTIONS) to the room. */
  react(emoji: string): void;

  setMicrophone(on: boolean): void;
  setCamera(on: boolean): Promise<void>;
  setScreenShare(on: boolean): Promise<void>;
  selectDevice(kind: "microphone" | "camera" | "speaker", id: string): Promise<void>;
  /** Echo cancellation, noise suppression, gain control of the microphone. */
  setAudioProcessing(processing: AudioProcessing): Promise<void>;

  /** Present in the desktop app only. */
  desktop?: DesktopActions;
}
