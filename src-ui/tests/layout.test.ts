import { describe, expect, it } from "vitest";
import { layoutOf, SELF, spotlightOf, viewAfterShares } from "../src/ui/layout";

describe("call layout", () => {
  const base = { view: "spotlight" as const, pinned: null, remotes: ["p_2", "p_3", "p_4"], sharing: [], speaker: null };

  it("spotlights the pin, else the newest share, else the speaker, else the first member", () => {
    expect(spotlightOf(base)).toBe("p_2");
    expect(spotlightOf({ ...base, speaker: "p_4" })).toBe("p_4");
    expect(spotlightOf({ ...base, speaker: "p_4", sharing: ["p_3"] })).toBe("p_3");
    expect(spotlightOf({ ...base, sharing: ["p_3", "p_4"] })).toBe("p_4");
    expect(spotlightOf({ ...base, sharing: ["p_3"], pinned: "p_2" })).toBe("p_2");
    expect(spotlightOf({ ...base, pinned: SELF })).toBe(SELF);
    // A pin or a speaker that left the call does not hold the spotlight.
    expect(spotlightOf({ ...base, pinned: "p_9", speaker: "p_8" })).toBe("p_2");
    expect(spotlightOf({ ...base, remotes: [] })).toBe(SELF);
  });

  it("puts every other tile in the strip, ours first", () => {
    expect(layoutOf({ ...base, speaker: "p_3" })).toEqual({
      view: "spotlight",
      spotlight: "p_3",
      others: [SELF, "p_2", "p_4"],
    });
    expect(layoutOf({ ...base, view: "grid" })).toEqual({
      view: "grid",
      spotlight: null,
      others: [SELF, "p_2", "p_3", "p_4"],
    });
    expect(layoutOf({ ...base, remotes: [] }).view).toBe("grid");
  });

  it("goes to the spotlight when a share starts, not when one stops", () => {
    expect(viewAfterShares("grid", [], ["p_2"])).toBe("spotlight");
    expect(viewAfterShares("grid", ["p_2"], [])).toBe("grid");
    expect(viewAfterShares("grid", ["p_2"], ["p_2"])).toBe("grid");
  });
});
