// What both engines check before a message with an image goes out.

import { describe, expect, it } from "vitest";
import { refuseLargeAttachment } from "../src/engine/outgoing";
import { initialState } from "../src/engine/session";

const limits = { max_frame_bytes: 1 << 20, max_chat_chars: 4000, max_peers: 8, max_attachment_bytes: 300 };
const image = (bytes: number) => ({ mime: "image/png", name: "a.png", data: "A".repeat((bytes / 3) * 4) });

describe("refuseLargeAttachment", () => {
  it("lets through an image within the server's limit, and a message without one", () => {
    const s = { ...initialState(), limits };
    expect(refuseLargeAttachment(s, image(300))).toBeNull();
    expect(refuseLargeAttachment(s)).toBeNull();
  });

  it("says an image over the limit is too large, counting its bytes, not its base64", () => {
    const s = { ...initialState(), limits };
    expect(refuseLargeAttachment(s, image(303))?.error).toEqual({
      code: "attachment",
      message: "That image is too large to send.",
    });
  });
});
