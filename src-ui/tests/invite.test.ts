import { describe, expect, it } from "vitest";
import { appLink, webLink } from "../src/engine/invite";

describe("invitation links", () => {
  it("the page of a room on the server that serves it, the token in the fragment", () => {
    expect(webLink("wss://chat.example.org/ws", "design review", null)).toBe(
      "https://chat.example.org/r/design%20review",
    );
    expect(webLink("ws://10.0.0.2:8787/ws", "a", "t0k")).toBe("http://10.0.0.2:8787/r/a#token=t0k");
    expect(webLink("wss://x.org/huddle/ws", "a", null)).toBe("https://x.org/huddle/r/a");
    expect(webLink("not a url", "a", null)).toBeNull();
  });

  it("writes huddle:// links exactly as the desktop app writes and reads them", () => {
    // The same link as src-tauri/links.rs's round-trip test.
    expect(appLink("ws://10.0.0.2:8787/ws", "design review", "s3cr/t")).toBe(
      "huddle://join?server=ws%3A%2F%2F10.0.0.2%3A8787%2Fws&room=design%20review&token=s3cr%2Ft",
    );
    expect(appLink("ws://h:1/ws", "it's (fun)!", null)).toBe(
      "huddle://join?server=ws%3A%2F%2Fh%3A1%2Fws&room=it%27s%20%28fun%29%21",
    );
  });
});
