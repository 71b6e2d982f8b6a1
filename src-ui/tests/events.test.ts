// The shell's events as pure transitions of the desktop app's state.

import { describe, expect, it } from "vitest";
import { applyUiEvent, initialDesktop } from "../src/desktop/events";
import type { UiEvent } from "../src/desktop/bindings";
import { initialState } from "../src/engine/session";
import type { EngineState } from "../src/engine/types";

const inRoom = (): EngineState => ({
  ...initialState(),
  status: "joined",
  rooms: [],
  desktop: { ...initialDesktop(), server: "s", pip: true },
  outgoing: [{ rid: "r1", text: "hi", ts: 0, status: "sending", written: true }],
});

const stats = (peer: string): UiEvent => ({
  type: "stats",
  peer,
  stats: {
    bitrateInKbps: 812.6,
    bitrateOutKbps: 99.4,
    fps: 30,
    framesDecoded: 10,
    rttMs: 12.7,
    lossPercent: 1.26,
    codec: "H264",
    candidateType: "host",
  },
});

describe("applyUiEvent", () => {
  it("rounds a member's figures and takes its tile's size", () => {
    const s = applyUiEvent(inRoom(), stats("p_b"), { width: 640, height: 360 });
    expect(s.stats.p_b).toMatchObject({
      bitrateInKbps: 813,
      bitrateOutKbps: 99,
      rttMs: 13,
      lossPercent: 1.3,
      width: 640,
      height: 360,
    });
  });

  it("forgets a closed link's stream and figures", () => {
    let s = applyUiEvent(inRoom(), { type: "peer_connection", peer: "p_b", state: "connected" });
    s = applyUiEvent(s, stats("p_b"));
    expect(s.remote.p_b?.connection).toBe("connected");
    s = applyUiEvent(s, { type: "link_closed", peer: "p_b" });
    expect(s.remote.p_b).toBeUndefined();
    expect(s.stats.p_b).toBeUndefined();
  });

  it("turns off only the failed device and says which", () => {
    const before = inRoom();
    const s = applyUiEvent(
      { ...before, local: { ...before.local, audio: true, video: true } },
      { type: "device_failed", device: "camera", message: "busy" },
    );
    expect(s.local.video).toBe(false);
    expect(s.local.audio).toBe(true);
    expect(s.error).toEqual({ code: "media", message: "Camera: busy" });
  });

  it("a lost connection keeps the room and fails what was being sent; a refused join goes back to the lobby", () => {
    const lost = applyUiEvent(inRoom(), { type: "stopped", reason: { code: "gave_up", message: "Lost." } });
    expect(lost.status).toBe("offline");
    expect(lost.outgoing[0].status).toBe("failed");
    const refused = applyUiEvent(inRoom(), { type: "stopped", reason: { code: "bad_password", message: "wrong" } });
    expect(refused.status).toBe("idle");
    expect(refused.error?.code).toBe("bad_password");
    expect(refused.desktop?.server).toBe("s");
    const left = inRoom();
    expect(applyUiEvent(left, { type: "stopped", reason: { code: "left", message: "" } })).toBe(left);
  });

  it("leaves the state as it is for events that only cause actions", () => {
    const s = inRoom();
    expect(applyUiEvent(s, { type: "devices", devices: { cameras: [], microphones: [], speakers: [] } })).toBe(s);
    expect(applyUiEvent(s, { type: "reconnecting" }).status).toBe("reconnecting");
    expect(applyUiEvent(s, { type: "pip_closed" }).desktop?.pip).toBe(false);
  });
});
