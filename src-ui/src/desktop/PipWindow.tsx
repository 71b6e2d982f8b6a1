// The picture-in-picture window's page (the desktop app's window labelled
// `pip`): one member's pictures and name, always on top. It holds no engine:
// the main window says whom to show (the shell's `pip` event, or
// `pip_target` as it starts) and the pictures come from the shell's `pip`
// view. Closing it is the window's own button.

import { useEffect, useRef, useState } from "react";
import type { PipTarget } from "./bindings";
import type { DesktopIpc } from "./ipc";
import { drawPictures } from "./pictures";

export function PipWindow({ ipc }: { ipc: DesktopIpc }) {
  const [target, setTarget] = useState<PipTarget | null>(null);
  const canvas = useRef<HTMLCanvasElement>(null);

  useEffect(() => {
    let stop: (() => void) | null = null;
    let live = true;
    void ipc.onPipTarget(setTarget).then((unlisten) => (live ? (stop = unlisten) : unlisten()));
    void ipc.pipTarget().then((t) => live && t && setTarget((now) => now ?? t));
    return () => {
      live = false;
      stop?.();
    };
  }, [ipc]);

  useEffect(() => {
    const el = canvas.current;
    if (!el) return;
    // The window is small and often over other work: the plain 2D renderer.
    return drawPictures(ipc, "pip", el, "2d");
  }, [ipc]);

  return (
    <main className="pip-window" data-testid="pip-window" data-member={target?.member ?? ""}>
      <canvas ref={canvas} className={`native-video${target?.member === "self" ? " mirrored" : ""}`} />
      <p className="pip-name">{target?.name ?? ""}</p>
    </main>
  );
}
