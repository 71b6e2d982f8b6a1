// The desktop shell's commands, typed. The argument and result types are
// generated from the Rust side (./bindings, by ts-rs); this file only
// names each command once. Nothing else in the UI calls `invoke`.

import { Channel, invoke } from "@tauri-apps/api/core";
import { listen } from "@tauri-apps/api/event";
import type { ClientMessage } from "../protocol";
import type { DeviceKind, HostInfo, JoinArgs, PipTarget, Settings, Startup, UiEvent } from "./bindings";

/** What a server's link grants: its access token, and the certificate to
 * trust on `wss://` (a hosted room's; none: the system's authorities). */
export interface ServerAccess {
  token: string | null;
  fingerprint: string | null;
}

/** A command's failure as the shell reports it. */
export interface CommandError {
  code: string;
  message: string;
}

export function isCommandError(e: unknown): e is CommandError {
  return typeof e === "object" && e !== null && "code" in e && "message" in e;
}

/** Whether this page runs inside the desktop app. */
export function inDesktopApp(): boolean {
  return typeof window !== "undefined" && "__TAURI_INTERNALS__" in window;
}

/** The label of the desktop app's window this page is in (`main`, or `pip`
 * for the picture-in-picture window). */
export function windowLabel(): string | null {
  const internals = (
    window as unknown as { __TAURI_INTERNALS__?: { metadata?: { currentWindow?: { label?: string } } } }
  ).__TAURI_INTERNALS__;
  return internals?.metadata?.currentWindow?.label ?? null;
}

export interface DesktopIpc {
  attach(onEvent: (event: UiEvent) => void): Promise<Startup>;
  saveSettings(settings: Settings): Promise<void>;
  watchRooms(server: string | null, access: ServerAccess): Promise<void>;
  join(args: JoinArgs): Promise<void>;
  leave(): Promise<void>;
  send(message: ClientMessage): Promise<void>;
  joinCall(video: boolean): Promise<void>;
  preview(on: boolean, video: boolean): Promise<void>;
  leaveCall(): Promise<void>;
  setMicrophone(on: boolean): Promise<void>;
  setCamera(on: boolean): Promise<void>;
  /** Shares the screen in place of the camera, or stops. */
  setScreenShare(on: boolean): Promise<void>;
  selectDevice(kind: DeviceKind, id: string | null): Promise<void>;
  /** Keeps the member's pictures (`self`: the self view) for `nextFrame`. */
  openTile(member: string): Promise<void>;
  /** A view's newest picture not yet drawn (empty when none came within a
   * second). A tile's view is its member's id; the picture-in-picture
   * window's is `pip`. */
  nextFrame(view: string): Promise<ArrayBuffer>;
  closeTile(view: string): Promise<void>;
  /** Opens the picture-in-picture window (or points it) at a member. */
  pipShow(target: PipTarget): Promise<void>;
  pipClose(): Promise<void>;
  /** Whom the picture-in-picture window shows (that window asks as it starts). */
  pipTarget(): Promise<PipTarget | null>;
  /** Calls `onTarget` whenever the main window points the picture-in-picture window elsewhere. */
  onPipTarget(onTarget: (target: PipTarget) => void): Promise<() => void>;
  host(): Promise<HostInfo>;
  /** Opens an http(s) link in the system's browser. */
  openUrl(url: string): Promise<void>;
  /** Stops the in-process server. */
  stopHosting(): Promise<void>;
  joinLink(server: string, room: string, access: ServerAccess): Promise<string>;
  /** A desktop notification through the system's notification service. */
  notify(title: string, body: string): Promise<void>;
  quit(): Promise<void>;
}

export const tauriIpc: DesktopIpc = {
  attach(onEvent) {
    const events = new Channel<UiEvent>();
    events.onmessage = onEvent;
    return invoke("attach", { events });
  },
  saveSettings: (settings) => invoke("save_settings", { settings }),
  watchRooms: (server, { token, fingerprint }) => invoke("watch_rooms", { server, token, fingerprint }),
  join: (args) => invoke("join", { args }),
  leave: () => invoke("leave"),
  send: (message) => invoke("send", { message }),
  joinCall: (video) => invoke("join_call", { video }),
  preview: (on, video) => invoke("preview", { on, video }),
  leaveCall: () => invoke("leave_call"),
  setMicrophone: (on) => invoke("set_microphone", { on }),
  setCamera: (on) => invoke("set_camera", { on }),
  setScreenShare: (on) => invoke("set_screen_share", { on }),
  selectDevice: (kind, id) => invoke("select_device", { kind, id }),
  openTile: (member) => invoke("open_tile", { member }),
  nextFrame: (view) => invoke("next_frame", { view }),
  closeTile: (view) => invoke("close_tile", { view }),
  pipShow: (target) => invoke("pip_show", { target }),
  pipClose: () => invoke("pip_close"),
  pipTarget: () => invoke("pip_target"),
  onPipTarget: (onTarget) => listen<PipTarget>("pip", (e) => onTarget(e.payload)),
  host: () => invoke("host"),
  stopHosting: () => invoke("stop_hosting"),
  openUrl: (url) => invoke("open_url", { url }),
  joinLink: (server, room, { token, fingerprint }) => invoke("join_link", { server, room, token, fingerprint }),
  notify: (title, body) => invoke("notify", { title, body }),
  quit: () => invoke("quit"),
};
