// Drawing one view's pictures on a canvas: ask the shell for the next
// picture each time the last one is drawn (the shell keeps only the newest,
// so a slow window skips pictures instead of queueing them). Used by the
// main window's tiles and by the picture-in-picture window.

import type { DesktopIpc } from "./ipc";
import { createRenderer, parsePicture, type Picture } from "./yuv";

/** After an empty answer to `nextFrame`, the wait before asking again. */
const NO_PICTURE_RETRY_MS = 100;

/** Draws view `view`'s pictures on `canvas` until the returned function is
 * called; `drawn` hears of each picture drawn (with its drawing time, ms,
 * and when it reached the window). */
export function drawPictures(
  ipc: Pick<DesktopIpc, "nextFrame">,
  view: string,
  canvas: HTMLCanvasElement,
  prefer: "webgl" | "2d",
  drawn: (picture: Picture, drawMs: number, arrived: number) => void = () => undefined,
): () => void {
  const renderer = createRenderer(canvas, prefer);
  canvas.dataset.renderer = renderer?.kind ?? "none";
  let open = true;
  let rendered = 0;
  void (async () => {
    while (open) {
      const buffer = await ipc.nextFrame(view).catch(() => new ArrayBuffer(0));
      const arrived = Date.now();
      if (buffer.byteLength === 0) {
        // Nothing within a second, or the shell closed the view (the call
        // ended): ask again a little later rather than at once.
        await new Promise((r) => setTimeout(r, NO_PICTURE_RETRY_MS));
        continue;
      }
      const picture = open ? parsePicture(buffer) : null;
      if (!picture || !renderer) continue;
      const start = performance.now();
      renderer.draw(picture);
      rendered += 1;
      canvas.dataset.rendered = String(rendered);
      drawn(picture, performance.now() - start, arrived);
    }
  })();
  return () => {
    open = false;
  };
}
