// How good a member's connection is now, from the figures both engines
// already collect (every second or half second): what the tile's bars show.

import type { PeerStats } from "./types";

export type LinkQuality = "good" | "fair" | "poor";

/** Thresholds, per figure: [fair from, poor from]. */
const RTT_MS = [250, 500] as const;
const LOSS_PERCENT = [3, 10] as const;
/**
 * The worst of round trip, recent loss and — when the member sends video
 * and pictures have come — whether they still come; `null` before there
 * are figures. A low frame rate alone is not held against the connection:
 * a busy machine decodes fewer pictures over a perfect one.
 */
export function linkQuality(stats: PeerStats | undefined, sendsVideo: boolean): LinkQuality | null {
  if (!stats) return null;
  const grades: LinkQuality[] = [];
  const grade = (fair: boolean, poor: boolean) => grades.push(poor ? "poor" : fair ? "fair" : "good");
  if (stats.rttMs !== null) grade(stats.rttMs >= RTT_MS[0], stats.rttMs >= RTT_MS[1]);
  grade(stats.lossPercent >= LOSS_PERCENT[0], stats.lossPercent >= LOSS_PERCENT[1]);
  if (sendsVideo && stats.framesDecoded > 0) grade(false, stats.fps === 0);
  if (grades.includes("poor")) return "poor";
  if (grades.includes("fair")) return "fair";
  return "good";
}

export const QUALITY_LABEL: Record<LinkQuality, string> = {
  good: "Good connection",
  fair: "Unstable connection",
  poor: "Poor connection",
};
