// Call controls: mute, camera, screen share, hand, reactions, devices,
// stats, hang up.

import { Icon } from "./icons";
import { useEngine, useEngineState, usePopover } from "./hooks";
import type { AudioProcessing } from "../engine/types";
import { HandButton, ReactionButton } from "./Reactions";
import { DeviceSelects } from "./DeviceSelect";

/** The parts of the microphone's processing, as the devices menu names them. */
const PROCESSING_PARTS: [keyof AudioProcessing, string][] = [
  ["echoCancellation", "Echo cancellation"],
  ["noiseSuppression", "Noise suppression"],
  ["autoGainControl", "Automatic gain"],
];

export function Controls({ showStats, setShowStats }: { showStats: boolean; setShowStats: (on: boolean) => void }) {
  const engine = useEngine();
  const state = useEngineState();
  // Escape closes the devices menu and gives the focus back to its button.
  const { open: devicesOpen, toggle: toggleDevices, button: devicesButton } = usePopover();
  const { local, devices } = state;
  // The desktop app captures the screen natively where its platform allows.
  const desktopBlock = state.desktop?.screenShareUnavailable ?? null;
  const canShare = engine.desktop
    ? desktopBlock === null
    : typeof navigator !== "undefined" && !!navigator.mediaDevices && "getDisplayMedia" in navigator.mediaDevices;
  const shareTitle = engine.desktop
    ? `${desktopBlock ?? ""} Share from Huddle in a browser instead.`
    : "This browser cannot share the screen";
  const talkingWhileMuted = state.inCall && !local.audio && state.talking;
  return (
    <div className="controls" role="toolbar" aria-label="Call controls">
      {talkingWhileMuted && (
        <p className="muted-hint" role="status">
          You're muted — press M to talk
        </p>
      )}
      <button
        type="button"
        className={`control${local.audio ? "" : " off"}`}
        aria-pressed={!local.audio}
        onClick={() => engine.setMicrophone(!local.audio)}
        title="Mute (M)"
      >
        <Icon name={local.audio ? "mic" : "micOff"} /> {local.audio ? "Mute" : "Unmute"}
      </button>
      <button
        type="button"
        className={`control${local.video ? "" : " off"}`}
        aria-pressed={local.video}
        onClick={() => void engine.setCamera(!local.video)}
        title="Camera (V)"
      >
        <Icon name={local.video ? "camera" : "cameraOff"} /> {local.video ? "Camera off" : "Camera on"}
      </button>
      <button
        type="button"
        className={`control${local.screen ? " active" : ""}`}
        aria-pressed={local.screen}
        disabled={!canShare}
        title={canShare ? "Share your screen" : shareTitle}
        onClick={() => void engine.setScreenShare(!local.screen)}
      >
        <Icon name="screen" /> {local.screen ? "Stop sharing" : "Share screen"}
      </button>
      <HandButton />
      <ReactionButton />
      <div className="devices">
        <button
          type="button"
          className="control"
          ref={devicesButton}
          aria-expanded={devicesOpen}
          onClick={toggleDevices}
        >
          <Icon name="settings" /> Devices
        </button>
        {devicesOpen && (
          <div className="device-menu" role="dialog" aria-label="Devices">
            <DeviceSelects engine={engine} devices={devices} />
            <fieldset className="processing">
              <legend>Microphone processing</legend>
              {PROCESSING_PARTS.map(([part, label]) => (
                <label key={part}>
                  <input
                    type="checkbox"
                    checked={devices.processing[part]}
                    onChange={(e) =>
                      void engine.setAudioProcessing({ ...devices.processing, [part]: e.target.checked })
                    }
                  />
                  {label}
                </label>
              ))}
            </fieldset>
            {engine.desktop && state.desktop?.screenSoundUnavailable === null && (
              <label title="Everything the computer plays but this call goes to everyone while you share">
                <input
                  type="checkbox"
                  checked={state.desktop.shareSound}
                  onChange={(e) => engine.desktop?.setShareSound(e.target.checked)}
                />
                Share the computer's sound with the screen
              </label>
            )}
            {engine.desktop && state.desktop && (
              <label>
                Volume
                <input
                  type="range"
                  min={0}
                  max={1}
                  step={0.05}
                  value={state.desktop.volume}
                  onChange={(e) => engine.desktop?.setVolume(Number(e.target.value))}
                  aria-label="Volume"
                />
              </label>
            )}
          </div>
        )}
      </div>
      <button
        type="button"
        className={`control${showStats ? " active" : ""}`}
        aria-pressed={showStats}
        onClick={() => setShowStats(!showStats)}
      >
        <Icon name="stats" /> Stats
      </button>
      <button
        type="button"
        className="control hangup"
        onClick={() => engine.leaveCall()}
        title="Leave the call (Shift+L)"
      >
        <Icon name="hangup" /> Leave call
      </button>
    </div>
  );
}
