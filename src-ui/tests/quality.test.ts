import { describe, expect, it } from "vitest";
import { linkQuality } from "../src/engine/quality";
import type { PeerStats } from "../src/engine/types";

const healthy: PeerStats = {
  bitrateInKbps: 900,
  bitrateOutKbps: 900,
  fps: 30,
  framesDecoded: 300,
  width: 640,
  height: 360,
  rttMs: 40,
  lossPercent: 0,
  codec: "H264",
  audioLevel: 0,
  candidateType: "host",
};

describe("linkQuality", () => {
  it("is unknown before there are figures", () => {
    expect(linkQuality(undefined, true)).toBeNull();
  });

  it("is good on a healthy link", () => {
    expect(linkQuality(healthy, true)).toBe("good");
  });

  it("takes the worst figure", () => {
    expect(linkQuality({ ...healthy, rttMs: 300 }, true)).toBe("fair");
    expect(linkQuality({ ...healthy, lossPercent: 4 }, true)).toBe("fair");
    expect(linkQuality({ ...healthy, lossPercent: 4, rttMs: 600 }, true)).toBe("poor");
    expect(linkQuality({ ...healthy, fps: 0 }, true)).toBe("poor");
    expect(linkQuality({ ...healthy, fps: 5 }, true)).toBe("good");
  });

  it("does not count missing pictures from a member who sends no video, or before the first", () => {
    expect(linkQuality({ ...healthy, fps: 0 }, false)).toBe("good");
    expect(linkQuality({ ...healthy, fps: 0, framesDecoded: 0 }, true)).toBe("good");
  });

  it("goes without a round trip when there is none yet", () => {
    expect(linkQuality({ ...healthy, rttMs: null }, true)).toBe("good");
  });
});
