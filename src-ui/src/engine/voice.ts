// Voice activity of our own microphone, for the "you're muted" hint: a
// level meter on a clone of the microphone's track (the clone stays enabled
// while the sent track is muted, so speech is still heard locally and never
// sent), and a detector against a tracked noise floor — the same rule as
// the native engine's `audio/voice.rs`.

/** How far above the noise floor a level must be to count as voice (dB). */
export const ABOVE_FLOOR_DB = 10;
/** Quieter than this is never voice (dBFS). */
export const MIN_DBFS = -55;
/** How fast the floor rises toward louder levels. */
export const FLOOR_RISE_DB_PER_S = 3;
/** How long voice lasts past the last voiced level. */
export const HANGOVER_MS = 300;

export class VoiceDetector {
  private floor = MIN_DBFS;
  private holdMs = 0;

  /** Judges the next level (dBFS), measured `stepMs` after the last. */
  update(levelDb: number, stepMs: number): boolean {
    if (levelDb < this.floor) this.floor = Math.max(levelDb, -100);
    else this.floor = Math.min(this.floor + (FLOOR_RISE_DB_PER_S * stepMs) / 1000, levelDb);
    if (levelDb > MIN_DBFS && levelDb > this.floor + ABOVE_FLOOR_DB) {
      this.holdMs = HANGOVER_MS;
      return true;
    }
    this.holdMs = Math.max(0, this.holdMs - stepMs);
    return this.holdMs > 0;
  }
}

/** The level of what a microphone hears now. */
export interface LevelMeter {
  /** dBFS of the last few ms (−100 for silence). */
  level(): number;
  stop(): void;
}

/** A meter on a clone of `track` through Web Audio; null where the page has none. */
export function webAudioMeter(track: MediaStreamTrack): LevelMeter | null {
  if (typeof AudioContext === "undefined") return null;
  const clone = track.clone();
  clone.enabled = true;
  const context = new AudioContext();
  // Started from the click that joined the call (sticky user activation);
  // a context created suspended would measure silence.
  void context.resume().catch(() => undefined);
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  context.createMediaStreamSource(new MediaStream([clone])).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  return {
    level() {
      analyser.getFloatTimeDomainData(samples);
      let energy = 0;
      for (const s of samples) energy += s * s;
      const rms = Math.sqrt(energy / samples.length);
      return rms <= 1e-5 ? -100 : 20 * Math.log10(rms);
    },
    stop() {
      clone.stop();
      void context.close();
    },
  };
}
