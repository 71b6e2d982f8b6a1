// The shell's events as pure state transitions, beside the browser
// engine's (../engine/session): an event in, the next state out. What an
// event does besides changing the state (ringing, links, devices, the
// picture-in-picture window) stays with `DesktopEngine`, which calls this.

import { failOutgoing } from "../engine/outgoing";
import { describeError, initialState } from "../engine/session";
import type { DesktopState, EngineState, PeerStats } from "../engine/types";
import type { DeviceKind, UiEvent } from "./bindings";

/** What a device that failed turns off in the local state. */
const DEVICE_OFF: Record<DeviceKind, Partial<EngineState["local"]>> = {
  camera: { video: false },
  microphone: { audio: false },
  speaker: {},
  screen: { screen: false },
  // The screen stays shared without it.
  sound: {},
};

/** The size a member's tile last drew its pictures at. */
/** The desktop app's own state before its shell has said anything. */
export function initialDesktop(): DesktopState {
  return {
    server: "",
    hosting: null,
    confirmClose: false,
    volume: 1,
    screenShareUnavailable: null,
    screenSoundUnavailable: null,
    shareSound: false,
    openedLink: null,
    linkPrompt: null,
    focused: true,
    pip: false,
  };
}

export interface TileSize {
  width: number;
  height: number;
}

/** The state after the shell's `event`; `tile` is the member's tile, for a
 * `stats` event. Events that change no state return it unchanged. */
export function applyUiEvent(s: EngineState, event: UiEvent, tile?: TileSize): EngineState {
  switch (event.type) {
    case "reconnecting":
      return { ...s, status: s.status === "connecting" ? s.status : "reconnecting" };
    case "voice":
      return { ...s, talking: event.talking };
    case "level":
      // Drawn only by the check before a call.
      return s.preview ? { ...s, preview: { ...s.preview, level: event.dbfs } } : s;
    case "stopped": {
      const { code, message } = event.reason;
      if (code === "left") return s;
      if (code === "gave_up" || code === "closed") {
        return failOutgoing({ ...s, status: "offline", error: { code: "connection", message } });
      }
      // A refused join: back to the lobby with the reason.
      return {
        ...initialState(),
        rooms: s.rooms,
        devices: s.devices,
        desktop: s.desktop,
        error: { code: code as never, message: describeError(code, message) },
      };
    }
    case "peer_connection":
      return { ...s, remote: { ...s.remote, [event.peer]: { stream: null, connection: event.state } } };
    case "link_closed": {
      const remote = { ...s.remote };
      delete remote[event.peer];
      const stats = { ...s.stats };
      delete stats[event.peer];
      return { ...s, remote, stats };
    }
    case "stats": {
      const stats: PeerStats = {
        ...event.stats,
        bitrateInKbps: Math.round(event.stats.bitrateInKbps),
        bitrateOutKbps: Math.round(event.stats.bitrateOutKbps),
        rttMs: event.stats.rttMs === null ? null : Math.round(event.stats.rttMs),
        lossPercent: Math.round(event.stats.lossPercent * 10) / 10,
        width: tile?.width ?? 0,
        height: tile?.height ?? 0,
        audioLevel: 0,
      };
      return { ...s, stats: { ...s.stats, [event.peer]: stats } };
    }
    case "device_failed":
      return {
        ...s,
        error: { code: "media", message: `${event.device[0].toUpperCase()}${event.device.slice(1)}: ${event.message}` },
        local: { ...s.local, ...DEVICE_OFF[event.device] },
      };
    case "rooms":
      return { ...s, rooms: event.rooms };
    case "window_focus":
      return s.desktop ? { ...s, desktop: { ...s.desktop, focused: event.focused } } : s;
    case "pip_closed":
      return s.desktop ? { ...s, desktop: { ...s.desktop, pip: false } } : s;
    case "confirm_close":
      return s.desktop ? { ...s, desktop: { ...s.desktop, confirmClose: true } } : s;
    case "server":
    case "open_link":
    case "devices":
      return s;
  }
}
