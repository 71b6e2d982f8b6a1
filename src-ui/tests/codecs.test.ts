import { describe, expect, it } from "vitest";
import { withOpusDtx } from "../src/engine/codecs";

const offer = [
  "v=0",
  "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9",
  "a=rtpmap:111 opus/48000/2",
  "a=fmtp:111 minptime=10;useinbandfec=1",
  "a=rtpmap:63 red/48000/2",
  "a=fmtp:63 111/111",
  "a=rtpmap:9 G722/8000",
  "m=video 9 UDP/TLS/RTP/SAVPF 102",
  "a=rtpmap:102 H264/90000",
  "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
  "",
].join("\r\n");

describe("withOpusDtx", () => {
  it("asks for DTX on Opus and touches nothing else", () => {
    const out = withOpusDtx(offer).split("\r\n");
    const before = offer.split("\r\n");
    expect(out).toHaveLength(before.length);
    const changed = out.filter((line, i) => line !== before[i]);
    expect(changed).toEqual(["a=fmtp:111 minptime=10;useinbandfec=1;usedtx=1"]);
  });

  it("leaves a description that already says, either way", () => {
    const off = offer.replace("useinbandfec=1", "useinbandfec=1;usedtx=0");
    expect(withOpusDtx(off)).toBe(off);
    const on = withOpusDtx(offer);
    expect(withOpusDtx(on)).toBe(on);
  });
});
