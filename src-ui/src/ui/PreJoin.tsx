// The check before a call ("Ready to join?"): the camera's picture, the
// microphone's live level, the device pickers and whether to join with the
// microphone and camera on. The devices it opens send nothing; joining
// keeps them (the desktop app) or opens them anew (a browser).

import { useCallback, useEffect, useRef, useState } from "react";
import { Icon } from "./icons";
import { Avatar } from "./Avatar";
import { DEVICE_KINDS, devicesOf, DeviceSelects } from "./DeviceSelect";
import { NativeVideo, Video } from "./CallGrid";
import { useEngine, useEngineState, useEscape } from "./hooks";
import { storage } from "./storage";

/** The meter's range: quieter than this shows empty. */
const FLOOR_DB = -60;

/** The microphone's level as a bar (role meter, for screen readers too). */
function LevelMeter({ level }: { level: number | null }) {
  const db = Math.max(FLOOR_DB, Math.min(0, level ?? FLOOR_DB));
  const percent = Math.round(((db - FLOOR_DB) / -FLOOR_DB) * 100);
  return (
    <div
      className="level"
      role="meter"
      aria-label="Microphone level"
      aria-valuemin={FLOOR_DB}
      aria-valuemax={0}
      aria-valuenow={Math.round(db)}
      aria-valuetext={level === null ? "not measured yet" : `${Math.round(db)} dB`}
      data-testid="mic-level"
      data-level={level ?? ""}
    >
      <span style={{ width: `${percent}%` }} />
    </div>
  );
}

export function PreJoin({ video: initialVideo, close }: { video: boolean; close: () => void }) {
  const engine = useEngine();
  const state = useEngineState();
  const [microphone, setMicrophone] = useState(storage.joinMicrophone());
  const [camera, setCamera] = useState(initialVideo);
  const [joining, setJoining] = useState(false);
  const joinButton = useRef<HTMLButtonElement>(null);

  // The devices are open while the check shows (the camera only when on).
  useEffect(() => {
    void engine.preview(true, camera);
  }, [engine, camera]);
  useEffect(() => () => void engine.preview(false), [engine]);
  useEffect(() => {
    const opener = document.activeElement as HTMLElement | null;
    joinButton.current?.focus();
    return () => opener?.focus?.();
  }, []);
  // A browser takes back the devices chosen on an earlier visit, once they are listed.
  const { devices } = state;
  const listed = DEVICE_KINDS.map((k) =>
    devicesOf(devices, k)
      .map((d) => d.deviceId)
      .join(","),
  ).join(";");
  useEffect(() => {
    if (engine.desktop) return;
    const now = engine.getState().devices;
    for (const kind of DEVICE_KINDS) {
      const id = storage.device(kind);
      if (id && now[kind] !== id && devicesOf(now, kind).some((d) => d.deviceId === id))
        void engine.selectDevice(kind, id);
    }
  }, [engine, listed]);
  const cancel = useCallback(() => close(), [close]);
  useEscape(true, cancel);

  const join = async () => {
    setJoining(true);
    storage.setJoinMicrophone(microphone);
    await engine.joinCall(camera, microphone);
    close();
  };
  const self = state.self;
  const stream = state.preview?.stream ?? null;
  return (
    <div className="modal-backdrop">
      <div className="prejoin" role="dialog" aria-modal="true" aria-labelledby="prejoin-title">
        <h2 id="prejoin-title">Ready to join?</h2>
        <div className="prejoin-view">
          {camera && engine.desktop ? (
            <NativeVideo member="self" mirrored />
          ) : camera && stream && stream.getVideoTracks().length > 0 ? (
            <Video stream={stream} muted speaker={null} mirrored />
          ) : (
            <div className="tile-avatar">{self && <Avatar id={self.id} name={self.name} size={72} />}</div>
          )}
          {!camera && <p className="prejoin-note">Camera off</p>}
        </div>
        <LevelMeter level={microphone ? (state.preview?.level ?? null) : null} />
        <div className="prejoin-toggles">
          <button
            type="button"
            className={`control${microphone ? "" : " off"}`}
            aria-pressed={!microphone}
            onClick={() => setMicrophone(!microphone)}
          >
            <Icon name={microphone ? "mic" : "micOff"} /> {microphone ? "Microphone on" : "Microphone muted"}
          </button>
          <button
            type="button"
            className={`control${camera ? "" : " off"}`}
            aria-pressed={camera}
            onClick={() => setCamera(!camera)}
          >
            <Icon name={camera ? "camera" : "cameraOff"} /> {camera ? "Camera on" : "Camera off"}
          </button>
        </div>
        <div className="prejoin-devices">
          <DeviceSelects engine={engine} devices={devices} />
        </div>
        <div className="actions">
          <button type="button" onClick={cancel}>
            Cancel
          </button>
          <button type="button" className="primary" ref={joinButton} disabled={joining} onClick={() => void join()}>
            {joining ? "Joining…" : "Join now"}
          </button>
        </div>
      </div>
    </div>
  );
}
