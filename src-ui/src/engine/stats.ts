// Per-peer figures from an RTCStatsReport: bitrates from byte deltas
// between two reports, the rest read directly.

import type { PeerStats } from "./types";

/** What the next report's deltas are computed against. */
export interface StatsSample {
  at: number;
  bytesIn: number;
  bytesOut: number;
  packetsIn: number;
  lostIn: number;
  /** Grows whenever anything at all arrives from the member: media packets,
   *  bytes on a candidate pair (RTCP too) and ICE checks and their answers. */
  heard: number;
}

type Entry = Record<string, unknown> & { type: string; id: string };

const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);

export function collectStats(
  report: RTCStatsReport | Map<string, Entry>,
  previous: StatsSample | null,
): { stats: PeerStats; sample: StatsSample } {
  const entries: Entry[] = [];
  report.forEach((value: unknown) => entries.push(value as Entry));
  const byId = new Map(entries.map((e) => [e.id, e]));
  let bytesIn = 0;
  let bytesOut = 0;
  let packetsIn = 0;
  let lostIn = 0;
  let fps = 0;
  let framesDecoded = 0;
  let keyframesDecoded = 0;
  let keyframesRequested = 0;
  let width = 0;
  let height = 0;
  let audioLevel = 0;
  let audio: { concealedPercent: number; delayMs: number } | undefined;
  let codec = "";
  let rttMs: number | null = null;
  let candidateType = "";
  let at = 0;
  let heard = 0;
  for (const e of entries) {
    if (e.type === "candidate-pair") {
      heard += num(e.bytesReceived) + num(e.requestsReceived) + num(e.responsesReceived);
    }
    at = Math.max(at, num(e.timestamp));
    if (e.type === "inbound-rtp") {
      bytesIn += num(e.bytesReceived);
      packetsIn += num(e.packetsReceived);
      lostIn += num(e.packetsLost);
      if (e.kind === "video") {
        fps = num(e.framesPerSecond);
        framesDecoded = num(e.framesDecoded);
        keyframesDecoded = num(e.keyFramesDecoded);
        keyframesRequested = num(e.pliCount);
        width = num(e.frameWidth);
        height = num(e.frameHeight);
        const c = typeof e.codecId === "string" ? byId.get(e.codecId) : undefined;
        if (c && typeof c.mimeType === "string") codec = c.mimeType.replace(/^video\//, "");
      } else if (e.kind === "audio") {
        audioLevel = num(e.audioLevel);
        const total = num(e.totalSamplesReceived);
        const emitted = num(e.jitterBufferEmittedCount);
        if (total > 0 && emitted > 0) {
          audio = {
            concealedPercent: (100 * num(e.concealedSamples)) / total,
            delayMs: (1000 * num(e.jitterBufferDelay)) / emitted,
          };
        }
      }
    } else if (e.type === "outbound-rtp") {
      bytesOut += num(e.bytesSent);
    } else if (
      e.type === "candidate-pair" &&
      (e.nominated || e.state === "succeeded") &&
      e.currentRoundTripTime !== undefined
    ) {
      rttMs = Math.round(num(e.currentRoundTripTime) * 1000);
      const local = typeof e.localCandidateId === "string" ? byId.get(e.localCandidateId) : undefined;
      if (local && typeof local.candidateType === "string") candidateType = local.candidateType;
    }
  }
  const sample: StatsSample = { at, bytesIn, bytesOut, packetsIn, lostIn, heard: heard + packetsIn };
  const seconds = previous ? (at - previous.at) / 1000 : 0;
  const rate = (now: number, before: number) =>
    seconds > 0 ? Math.max(0, Math.round(((now - before) * 8) / seconds / 1000)) : 0;
  const dPackets = previous ? packetsIn - previous.packetsIn : 0;
  const dLost = previous ? lostIn - previous.lostIn : 0;
  return {
    stats: {
      bitrateInKbps: previous ? rate(bytesIn, previous.bytesIn) : 0,
      bitrateOutKbps: previous ? rate(bytesOut, previous.bytesOut) : 0,
      fps,
      framesDecoded,
      keyframesDecoded,
      keyframesRequested,
      width,
      height,
      rttMs,
      lossPercent: dPackets + dLost > 0 ? Math.round((1000 * Math.max(0, dLost)) / (dPackets + dLost)) / 10 : 0,
      codec,
      audioLevel,
      candidateType,
      ...(audio && { audioConcealedPercent: audio.concealedPercent, audioDelayMs: audio.delayMs }),
    },
    sample,
  };
}
