import { describe, expect, it } from "vitest";
import { collectStats } from "../src/engine/stats";

type Entry = Record<string, unknown> & { type: string; id: string };

const report = (entries: Entry[]) => new Map(entries.map((e) => [e.id, e]));

describe("collectStats", () => {
  it("reads the video's keyframes decoded and asked for, and rates from the previous report", () => {
    const first = collectStats(
      report([{ type: "inbound-rtp", id: "v", kind: "video", timestamp: 1000, bytesReceived: 0, framesDecoded: 0 }]),
      null,
    );
    const { stats } = collectStats(
      report([
        {
          type: "inbound-rtp",
          id: "v",
          kind: "video",
          timestamp: 2000,
          bytesReceived: 125_000,
          framesDecoded: 30,
          keyFramesDecoded: 2,
          pliCount: 1,
        },
      ]),
      first.sample,
    );
    expect(stats.framesDecoded).toBe(30);
    expect(stats.keyframesDecoded).toBe(2);
    expect(stats.keyframesRequested).toBe(1);
    expect(stats.bitrateInKbps).toBe(1000);
  });

  it("counts no keyframes where the report has none", () => {
    const { stats } = collectStats(report([{ type: "outbound-rtp", id: "o", timestamp: 1000, bytesSent: 10 }]), null);
    expect(stats.keyframesDecoded).toBe(0);
    expect(stats.keyframesRequested).toBe(0);
  });
});
