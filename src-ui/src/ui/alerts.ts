// Telling someone who is looking elsewhere: when a call starts or someone
// rings while the window is not focused, a desktop notification (where the
// system allows it) and a short two-note chime (Web Audio, generated: no
// sound file, no microphone permission).

import type { Prompt } from "../engine/types";

let audio: AudioContext | null = null;

/** Two notes, 660 then 880 Hz, ~0.6 s in all. */
export function chime(): void {
  try {
    audio ??= new AudioContext();
    const ctx = audio;
    void ctx.resume();
    [660, 880].forEach((hz, i) => {
      const start = ctx.currentTime + i * 0.22;
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.frequency.value = hz;
      gain.gain.setValueAtTime(0, start);
      gain.gain.linearRampToValueAtTime(0.2, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.001, start + 0.35);
      osc.connect(gain).connect(ctx.destination);
      osc.start(start);
      osc.stop(start + 0.4);
    });
  } catch {
    // No audio output: the notification and the prompt remain.
  }
}

/** What to say for a prompt. */
export function promptText(prompt: Prompt): { title: string; body: string } {
  return prompt.kind === "ring"
    ? { title: `${prompt.fromName} is calling`, body: prompt.video ? "Video call" : "Audio call" }
    : { title: `${prompt.byName} started a call`, body: "Join from Huddle" };
}

/** Where the user is, and how to tell them, in the desktop app: whether
 * its window has the focus, and the system's notifications (the page's own
 * `Notification` is denied inside the app's web view). */
export interface NativeAlerts {
  focused: boolean;
  notify: (title: string, body: string) => void;
}

/** Alerts for `prompt` if the window is not focused: a chime, and a
 * notification (the system's through `native` in the desktop app). */
export function alertIfAway(prompt: Prompt, room: string | undefined, native?: NativeAlerts): void {
  if (typeof document === "undefined") return;
  if (native ? native.focused : document.hasFocus()) return;
  chime();
  const { title, body: what } = promptText(prompt);
  const body = room ? `${what} · ${room}` : what;
  if (native) {
    native.notify(title, body);
    return;
  }
  if (typeof Notification === "undefined") return;
  const show = () => {
    const n = new Notification(title, { body, tag: "huddle-call" });
    n.onclick = () => window.focus();
  };
  if (Notification.permission === "granted") show();
  else if (Notification.permission === "default")
    void Notification.requestPermission().then((p) => p === "granted" && show());
}
