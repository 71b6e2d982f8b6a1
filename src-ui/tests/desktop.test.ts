// The desktop engine over a scripted shell: what the window shows for the
// shell's events, and which commands user actions become.

import { describe, expect, it, vi } from "vitest";
import { CONFIRM_MS } from "../src/engine/outgoing";
import type { DeviceList, Settings, Startup, UiEvent } from "../src/desktop/bindings";
import { DesktopEngine } from "../src/desktop/engine";
import type { DesktopIpc } from "../src/desktop/ipc";
import { parsePicture } from "../src/desktop/yuv";
import { testPeer } from "./fakes";

const settings: Settings = {
  name: "Ada",
  serverUrl: "chat.example.org",
  recentRooms: [],
  camera: null,
  microphone: null,
  speaker: null,
  volume: 1,
  theme: null,
  window: null,
  audioProcessing: { echoCancellation: true, noiseSuppression: false, autoGainControl: true },
  joinMicrophone: true,
  shareSound: false,
};
const devices: DeviceList = {
  cameras: [{ id: "pattern", name: "Test pattern", is_default: true }],
  microphones: [],
  speakers: [{ id: "alsa:pulse", name: "PulseAudio", is_default: true }],
};

/** A shell that records commands and lets the test send events. */
function shell(join: (args: unknown) => Promise<void> = async () => undefined) {
  const calls: [string, unknown][] = [];
  let emit: (e: UiEvent) => void = () => undefined;
  const record =
    (name: string) =>
    async (arg?: unknown): Promise<never> => {
      calls.push([name, arg]);
      return undefined as never;
    };
  const ipc: DesktopIpc = {
    attach: async (onEvent) => {
      emit = onEvent;
      const startup: Startup = {
        settings,
        devices,
        link: null,
        hosting: null,
        softwarePainting: true,
        screenShareUnavailable: null,
        screenSoundUnavailable: null,
      };
      return startup;
    },
    saveSettings: record("saveSettings"),
    watchRooms: record("watchRooms"),
    join: (args) => {
      calls.push(["join", args]);
      return join(args);
    },
    leave: record("leave"),
    send: record("send"),
    joinCall: record("joinCall"),
    preview: record("preview"),
    leaveCall: record("leaveCall"),
    setMicrophone: record("setMicrophone"),
    setCamera: record("setCamera"),
    setScreenShare: record("setScreenShare"),
    selectDevice: record("selectDevice"),
    openTile: record("openTile"),
    nextFrame: async () => new ArrayBuffer(0),
    closeTile: record("closeTile"),
    pipShow: record("pipShow"),
    pipClose: record("pipClose"),
    pipTarget: async () => null,
    onPipTarget: async () => () => undefined,
    host: async () => ({
      serverUrl: "wss://10.0.0.2:8787/ws",
      webUrl: "https://10.0.0.2:8787/",
      token: "tok3n",
      fingerprint: "AB:CD",
    }),
    stopHosting: record("stopHosting"),
    openUrl: record("openUrl"),
    joinLink: async (server, room, access) => {
      calls.push(["joinLink", { server, room, ...access }]);
      return "huddle://join";
    },
    notify: record("notify"),
    quit: record("quit"),
  };
  return { ipc, calls, emit: (e: UiEvent) => emit(e) };
}

const joined = {
  type: "joined" as const,
  self: testPeer("p_1", "Ada"),
  room: { name: "standup", locked: false, peers: [], call: null },
  ice_servers: [],
  resume: "r",
  resumed: false,
  limits: { max_frame_bytes: 1048576, max_chat_chars: 4000, max_peers: 8, max_attachment_bytes: 1000 },
};

describe("DesktopEngine", () => {
  it("a link handed over by a second launch opens its join screen, after the room in one", async () => {
    const { ipc, emit } = shell();
    const engine = new DesktopEngine(ipc);
    await engine.ready;
    emit({
      type: "open_link",
      link: { server: "ws://other.example.org/ws", room: "retro", token: null, fingerprint: null },
    });
    // Another server than the current one: asked first, nothing changed yet.
    expect(engine.getState().desktop?.linkPrompt).toEqual({ host: "other.example.org", room: "retro" });
    expect(engine.getState().desktop?.server).toBe("chat.example.org");
    engine.desktop?.answerLink(true);
    expect(engine.getState().desktop?.linkPrompt).toBeNull();
    expect(engine.getState().desktop?.server).toBe("ws://other.example.org/ws");
    expect(engine.getState().desktop?.openedLink).toEqual({ room: "retro", seq: 1 });
    engine.join({ room: "standup", name: "Ada" });
    emit({ type: "server", message: joined as never });
    emit({
      type: "open_link",
      link: { server: "ws://third.example.org/ws", room: "planning", token: null, fingerprint: null },
    });
    expect(engine.getState().status).toBe("joined");
    expect(engine.getState().error?.code).toBe("link");
    expect(engine.getState().desktop?.openedLink?.room).toBe("retro");
    engine.leave();
    expect(engine.getState().desktop?.linkPrompt).toEqual({ host: "third.example.org", room: "planning" });
    engine.desktop?.answerLink(true);
    expect(engine.getState().desktop?.server).toBe("ws://third.example.org/ws");
    expect(engine.getState().desktop?.openedLink).toEqual({ room: "planning", seq: 2 });
    engine.dispose();
  });

  it("a link to another server that the user declines changes nothing, and its token is not kept", async () => {
    const { ipc, calls, emit } = shell();
    const engine = new DesktopEngine(ipc);
    await engine.ready;
    emit({
      type: "open_link",
      link: { server: "ws://evil.example/ws", room: "free-prizes", token: "t", fingerprint: "EE:EE" },
    });
    engine.desktop?.answerLink(false);
    expect(engine.getState().desktop?.linkPrompt).toBeNull();
    expect(engine.getState().desktop?.server).toBe("chat.example.org");
    expect(calls.some(([name]) => name === "saveSettings")).toBe(false);
    engine.join({ room: "standup", name: "Ada" });
    expect(calls).toContainEqual([
      "join",
      { server: "chat.example.org", room: "standup", name: "Ada", password: null, token: null, fingerprint: null },
    ]);
    engine.dispose();
  });

  it("a link to the current server opens its room at once, with its token", async () => {
    const { ipc, calls, emit } = shell();
    const engine = new DesktopEngine(ipc);
    await engine.ready;
    emit({
      type: "open_link",
      link: { server: "chat.example.org", room: "retro", token: "t0k", fingerprint: "12:34" },
    });
    expect(engine.getState().desktop?.linkPrompt).toBeNull();
    expect(engine.getState().desktop?.openedLink).toEqual({ room: "retro", seq: 1 });
    engine.join({ room: "retro", name: "Ada" });
    expect(calls).toContainEqual([
      "join",
      { server: "chat.example.org", room: "retro", name: "Ada", password: null, token: "t0k", fingerprint: "12:34" },
    ]);
    engine.dispose();
  });

  it("shares the screen through the shell, and shows when the screen gives out", async () => {
    const { ipc, calls, emit } = shell();
    const engine = new DesktopEngine(ipc);
    await engine.ready;
    expect(engine.getState().desktop?.screenShareUnavailable).toBeNull();
    await engine.setScreenShare(true);
    expect(calls).toContainEqual(["setScreenShare", true]);
    expect(engine.getState().local.screen).toBe(true);
    emit({ type: "device_failed", device: "screen", message: "the screen cannot be shared: no X server" });
    const s = engine.getState();
    expect(s.local.screen).toBe(false);
    expect(s.error?.message).toBe("Screen: the screen cannot be shared: no X server");
    engine.dispose();
  });

  it("the computer's sound: chosen and kept in the settings; when it cannot be had the screen stays shared and says why", async () => {
    const { ipc, calls, emit } = shell();
    const engine = new DesktopEngine(ipc);
    await engine.ready;
    expect(engine.getState().desktop?.shareSound).toBe(false);
    engine.desktop?.setShareSound(true);
    expect(engine.getState().desktop?.shareSound).toBe(true);
    const saved = calls.filter(([name]) => name === "saveSettings").at(-1)?.[1] as Settings;
    expect(saved.shareSound).toBe(true);
    await engine.setScreenShare(true);
    emit({
      type: "device_failed",
      device: "sound",
      message: "the computer's sound cannot be shared: process loopback could not be activated",
    });
    const s = engine.getState();
    expect(s.local.screen).toBe(true);
    expect(s.error?.message).toBe(
      "Sound: the computer's sound cannot be shared: process loopback could not be activated",
    );
    engine.dispose();
  });

  it("follows the microphone's voice activity (the muted-and-talking hint)", async () => {
    const { ipc, emit } = shell();
    const engine = new DesktopEngine(ipc);
    await engine.ready;
    expect(engine.getState().talking).toBe(false);
    emit({ type: "voice", talking: true });
    expect(engine.getState().talking).toBe(true);
    emit({ type: "voice", talking: false });
    expect(engine.getState().talking).toBe(false);
    engine.dispose();
  });

  it("the check before a call shows the microphone's level only while open; joining muted mutes through the shell at once", async () => {
    const { ipc, emit, calls } = shell();
    const engine = new DesktopEngine(ipc);
    await engine.ready;
    emit({ type: "level", dbfs: -30 });
    expect(engine.getState().preview).toBeNull();
    await engine.preview(true);
    emit({ type: "level", dbfs: -24 });
    expect(engine.getState().preview).toEqual({ stream: null, level: -24 });
    await engine.joinCall(false, false);
    expect(engine.getState().preview).toBeNull();
    expect(engine.getState().local.audio).toBe(false);
    const order = calls
      .map(([name, arg]) => `${name}(${JSON.stringify(arg)})`)
      .filter((c) => /preview|joinCall|setMicrophone/.test(c));
    expect(order).toEqual(["preview(true)", "joinCall(false)", "setMicrophone(false)"]);
    await engine.preview(true, false);
    expect(calls.at(-1)).toEqual(["preview", true]);
    engine.dispose();
  });

  it("picture in picture: opened once per target, pointed elsewhere, closed by its own button or with the call", async () => {
    const { ipc, emit, calls } = shell();
    const engine = new DesktopEngine(ipc);
    await engine.ready;
    const pips = () => calls.filter(([name]) => name.startsWith("pip"));
    engine.desktop?.pip({ member: "p_2", name: "Grace" });
    engine.desktop?.pip({ member: "p_2", name: "Grace" });
    expect(engine.getState().desktop?.pip).toBe(true);
    engine.desktop?.pip({ member: "p_3", name: "Linus" });
    expect(pips()).toEqual([
      ["pipShow", { member: "p_2", name: "Grace" }],
      ["pipShow", { member: "p_3", name: "Linus" }],
    ]);
    emit({ type: "pip_closed" });
    expect(engine.getState().desktop?.pip).toBe(false);
    // Opened again after its window was closed.
    engine.desktop?.pip({ member: "p_3", name: "Linus" });
    expect(pips().length).toBe(3);
    engine.leaveCall();
    expect(engine.getState().desktop?.pip).toBe(false);
    engine.dispose();
  });

  it("the microphone's processing starts as stored and a change is kept by the shell", async () => {
    const { ipc, calls } = shell();
    const engine = new DesktopEngine(ipc);
    await engine.ready;
    expect(engine.getState().devices.processing).toEqual({
      echoCancellation: true,
      noiseSuppression: false,
      autoGainControl: true,
    });
    const all = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
    await engine.setAudioProcessing(all);
    expect(engine.getState().devices.processing).toEqual(all);
    const saved = calls.filter(([name]) => name === "saveSettings").at(-1)?.[1] as Settings;
    expect(saved.audioProcessing).toEqual(all);
    engine.dispose();
  });

  it("starts from the stored settings and the shell's devices", async () => {
    const { ipc } = shell();
    const engine = new DesktopEngine(ipc);
    await engine.ready;
    const s = engine.getState();
    expect(s.desktop?.server).toBe("chat.example.org");
    expect(s.devices.camera).toBe("pattern");
    expect(s.devices.speaker).toBe("alsa:pulse");
    engine.dispose();
  });

  it("joins through the shell and shows the room the server confirms", async () => {
    const { ipc, calls, emit } = shell();
    const engine = new DesktopEngine(ipc);
    await engine.ready;
    engine.join({ room: "standup", name: "Ada" });
    expect(engine.getState().status).toBe("connecting");
    expect(calls).toContainEqual([
      "join",
      { server: "chat.example.org", room: "standup", name: "Ada", password: null, token: null, fingerprint: null },
    ]);
    emit({ type: "server", message: joined as never });
    expect(engine.getState().status).toBe("joined");
    expect(engine.getState().room?.name).toBe("standup");
    engine.dispose();
  });

  it("hosting: joins and links carry the hosted server's token and certificate; stopping forgets them", async () => {
    const { ipc, calls } = shell();
    const engine = new DesktopEngine(ipc);
    await engine.ready;
    await engine.desktop?.host();
    expect(engine.getState().desktop?.hosting?.token).toBe("tok3n");
    engine.join({ room: "standup", name: "Ada" });
    expect(calls).toContainEqual([
      "join",
      {
        server: "wss://10.0.0.2:8787/ws",
        room: "standup",
        name: "Ada",
        password: null,
        token: "tok3n",
        fingerprint: "AB:CD",
      },
    ]);
    await engine.desktop?.joinLink("standup");
    expect(calls).toContainEqual([
      "joinLink",
      { server: "wss://10.0.0.2:8787/ws", room: "standup", token: "tok3n", fingerprint: "AB:CD" },
    ]);
    engine.leave();
    await engine.desktop?.stopHosting();
    expect(calls.some(([name]) => name === "stopHosting")).toBe(true);
    expect(engine.getState().desktop?.hosting).toBeNull();
    expect(engine.getState().desktop?.server).toBe("");
    // Another server typed in afterwards gets no token.
    engine.desktop?.setServer("chat.example.org");
    engine.join({ room: "standup", name: "Ada" });
    expect(calls).toContainEqual([
      "join",
      { server: "chat.example.org", room: "standup", name: "Ada", password: null, token: null, fingerprint: null },
    ]);
    engine.dispose();
  });

  it("chat: sending until the server's echo, failed with retry when it never comes, failed at once when the engine gives up", async () => {
    vi.useFakeTimers();
    try {
      const { ipc, calls, emit } = shell();
      const engine = new DesktopEngine(ipc);
      await engine.ready;
      engine.join({ room: "standup", name: "Ada" });
      emit({ type: "server", message: joined as never });
      engine.sendChat("first");
      engine.sendChat("second");
      expect(engine.getState().outgoing.map((o) => [o.text, o.status])).toEqual([
        ["first", "sending"],
        ["second", "sending"],
      ]);
      // The echo (no rid through the native engine) confirms the oldest with its text.
      emit({ type: "server", message: { type: "chat", id: "m_1", from: "p_1", text: "first", ts: 1 } });
      expect(engine.getState().outgoing.map((o) => o.text)).toEqual(["second"]);
      expect(engine.getState().chat.some((l) => l.kind === "chat" && l.text === "first")).toBe(true);
      // "second" never echoes: after CONFIRM_MS it is offered for retry.
      vi.advanceTimersByTime(CONFIRM_MS + 1000);
      expect(engine.getState().outgoing.map((o) => [o.text, o.status])).toEqual([["second", "failed"]]);
      const rid = engine.getState().outgoing[0]?.rid ?? "";
      engine.retryChat(rid);
      expect(calls.filter(([name, m]) => name === "send" && (m as { text?: string }).text === "second")).toHaveLength(
        2,
      );
      expect(engine.getState().outgoing.map((o) => [o.text, o.status])).toEqual([["second", "sending"]]);
      // The engine gives up on the server: what is unconfirmed says so at once.
      emit({ type: "stopped", reason: { code: "gave_up", message: "Lost the connection." } } as UiEvent);
      expect(engine.getState().outgoing.map((o) => o.status)).toEqual(["failed"]);
      engine.discardChat(engine.getState().outgoing[0]?.rid ?? "");
      expect(engine.getState().outgoing).toEqual([]);
      engine.dispose();
    } finally {
      vi.useRealTimers();
    }
  });

  it("a server that never answered is said at once, in the lobby, and another server's rooms are not listed", async () => {
    const { ipc, emit } = shell();
    const engine = new DesktopEngine(ipc);
    await engine.ready;
    emit({ type: "rooms", rooms: [{ name: "old-room", peers: 1, in_call: 0, locked: false }] });
    engine.desktop?.setServer("typo.example.org");
    expect(engine.getState().rooms).toBeNull();
    engine.join({ room: "standup", name: "Ada" });
    const why = "Could not reach the server: the name could not be found (DNS).";
    emit({ type: "stopped", reason: { code: "unreachable", message: why } });
    const s = engine.getState();
    expect(s.status).toBe("idle");
    expect(s.error?.message).toBe(why);
    engine.dispose();
  });

  it("a refused join goes back to the lobby with the reason", async () => {
    const { ipc, emit } = shell();
    const engine = new DesktopEngine(ipc);
    await engine.ready;
    engine.join({ room: "locked", name: "Ada", password: "nope" });
    emit({ type: "stopped", reason: { code: "bad_password", message: "wrong password" } });
    const s = engine.getState();
    expect(s.status).toBe("idle");
    expect(s.error?.message).toBe("Wrong password for this room.");
    expect(s.desktop?.server).toBe("chat.example.org");
    engine.dispose();
  });

  it("a bad server address is the shell's message, not a hang", async () => {
    const { ipc } = shell(async () =>
      Promise.reject({ code: "bad_server_url", message: '"a b" is not a server address' }),
    );
    const engine = new DesktopEngine(ipc);
    await engine.ready;
    engine.join({ room: "r", name: "Ada" });
    await new Promise((r) => setTimeout(r, 0));
    expect(engine.getState().status).toBe("idle");
    expect(engine.getState().error?.message).toContain("not a server address");
    engine.dispose();
  });

  it("losing the server shows reconnecting, then offline when the shell gives up", async () => {
    const { ipc, emit } = shell();
    const engine = new DesktopEngine(ipc);
    await engine.ready;
    engine.join({ room: "standup", name: "Ada" });
    emit({ type: "server", message: joined as never });
    emit({ type: "reconnecting" });
    expect(engine.getState().status).toBe("reconnecting");
    emit({ type: "stopped", reason: { code: "gave_up", message: "Lost the connection to the server." } });
    expect(engine.getState().status).toBe("offline");
    engine.dispose();
  });

  it("the close question comes and goes", async () => {
    const { ipc, calls, emit } = shell();
    const engine = new DesktopEngine(ipc);
    await engine.ready;
    emit({ type: "confirm_close" });
    expect(engine.getState().desktop?.confirmClose).toBe(true);
    engine.desktop.confirmClose(true);
    expect(engine.getState().desktop?.confirmClose).toBe(false);
    expect(calls.map(([name]) => name)).toContain("quit");
    engine.dispose();
  });
});

describe("parsePicture", () => {
  it("reads the header and planes, and refuses sizes that do not add up", () => {
    const bytes = new ArrayBuffer(24 + 4 * 2 * 1.5);
    const view = new DataView(bytes);
    view.setUint32(0, 4, true);
    view.setUint32(4, 2, true);
    view.setFloat64(8, 1234.5, true);
    view.setUint32(16, 9, true);
    view.setUint32(20, 2, true);
    const p = parsePicture(bytes);
    expect(
      p && { w: p.width, h: p.height, at: p.decodedAt, sent: p.sent, dropped: p.dropped, y: p.y.length, u: p.u.length },
    ).toEqual({ w: 4, h: 2, at: 1234.5, sent: 9, dropped: 2, y: 8, u: 2 });
    expect(parsePicture(bytes.slice(0, 30))).toBeNull();
    expect(parsePicture(new ArrayBuffer(8))).toBeNull();
  });
});
