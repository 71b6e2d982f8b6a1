// The interop contract with the native engine: H.264 constrained baseline
// (profile-level-id 42e01f, packetization-mode 1) offered and accepted,
// first; other codecs may follow. And Opus with DTX: silence sent as
// silence, whoever listens.

interface Codec {
  mimeType: string;
  sdpFmtpLine?: string;
  clockRate: number;
  channels?: number;
}

/** Whether a codec is the H.264 the native engine speaks. */
export function isContractH264(codec: Codec): boolean {
  if (codec.mimeType.toLowerCase() !== "video/h264") return false;
  const fmtp = (codec.sdpFmtpLine ?? "").toLowerCase();
  return fmtp.includes("profile-level-id=42e01f") && fmtp.includes("packetization-mode=1");
}

/** The codecs reordered: contract H.264 first, other H.264 next, the rest after. */
export function orderCodecs<C extends Codec>(codecs: C[]): C[] {
  const rank = (c: C) => (isContractH264(c) ? 0 : c.mimeType.toLowerCase() === "video/h264" ? 1 : 2);
  return codecs
    .map((c, i) => [c, i] as const)
    .sort((a, b) => rank(a[0]) - rank(b[0]) || a[1] - b[1])
    .map(([c]) => c);
}

/** Applies the order to a video transceiver, where the browser allows it. */
export function preferH264(transceiver: RTCRtpTransceiver): void {
  if (typeof RTCRtpReceiver === "undefined" || !RTCRtpReceiver.getCapabilities) return;
  const capabilities = RTCRtpReceiver.getCapabilities("video");
  if (!capabilities || typeof transceiver.setCodecPreferences !== "function") return;
  const ordered = orderCodecs(capabilities.codecs);
  if (!ordered.some(isContractH264)) return; // this browser has no H.264 at all
  transceiver.setCodecPreferences(ordered);
}

/** A remote description `sdp` that asks for Opus DTX (`usedtx=1`) on
 * every Opus payload type. Chromium sends silence as silence (a packet
 * every 400 ms while nobody talks, not 50 a second) only when the other
 * side's description asks for it; the native engine's does, another
 * browser's does not. So a page applies the descriptions it receives with
 * the ask added: it sends as the native engine does, to everyone. */
export function withOpusDtx(sdp: string): string {
  const opus = new Set([...sdp.matchAll(/^a=rtpmap:(\d+) opus\/48000/gim)].map((m) => m[1]));
  return sdp
    .split("\r\n")
    .map((line) => {
      const fmtp = /^a=fmtp:(\d+) (.*)$/.exec(line);
      if (!fmtp || !opus.has(fmtp[1]) || /(^|;)\s*usedtx=/i.test(fmtp[2])) return line;
      return `${line};usedtx=1`;
    })
    .join("\r\n");
}
