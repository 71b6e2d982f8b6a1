// The desktop shell's commands, typed. The argument and result types are
// generated from the Rust side (./bindings, by ts-rs); this file only
// names each command once. Nothing else in the UI calls `invoke`.

import { Channel, invoke } from "@tauri-apps/api/core";
import type { ClientMessage } from "../protocol";
import type { DeviceKind, HostInfo, JoinArgs, Settings, Startup, UiEvent } from "./bindings";

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
  /** The member's newest picture not yet drawn (empty when none came within a second). */
  nextFrame(member: string): Promise<ArrayBuffer>;
  closeTile(member: string): Promise<void>;
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
  nextFrame: (member) => invoke("next_frame", { member }),
  closeTile: (member) => invoke("close_tile", { member }),
  host: () => invoke("host"),
  stopHosting: () => invoke("stop_hosting"),
  openUrl: (url) => invoke("open_url", { url }),
  joinLink: (server, room, { token, fingerprint }) => invoke("join_link", { server, room, token, fingerprint }),
  notify: (title, body) => invoke("notify", { title, body }),
  quit: () => invoke("quit"),
};
