import { describe, expect, it } from "vitest";
import { VoiceDetector } from "../src/engine/voice";

describe("VoiceDetector", () => {
  it("a steady fan becomes the floor; a voice over it is voice; a pause is held, a silence is not", () => {
    const v = new VoiceDetector();
    const fan = Array.from({ length: 100 }, () => v.update(-40, 100));
    expect(fan.slice(70).some((t) => t)).toBe(false);
    expect(v.update(-20, 100)).toBe(true);
    expect(v.update(-40, 100)).toBe(true);
    const after = Array.from({ length: 10 }, () => v.update(-40, 100));
    expect(after.slice(3).some((t) => t)).toBe(false);
  });

  it("silence and faint hiss are never voice", () => {
    const v = new VoiceDetector();
    expect(v.update(-100, 100)).toBe(false);
    expect(v.update(-60, 100)).toBe(false);
  });
});
