// Choosing a microphone, camera or speaker: the picker the devices menu and
// the check before a call share, and the choice remembered for next time.

import type { Devices, Engine } from "../engine/types";
import { storage } from "./storage";

export type DeviceKind = "microphone" | "camera" | "speaker";
export const DEVICE_KINDS: DeviceKind[] = ["microphone", "camera", "speaker"];

/** The devices of one kind present now. */
export function devicesOf(devices: Devices, kind: DeviceKind): MediaDeviceInfo[] {
  return kind === "microphone" ? devices.microphones : kind === "camera" ? devices.cameras : devices.speakers;
}

/** Uses a device and remembers it for the next visit (the desktop app's
 * shell remembers its own choice in its settings). */
function chooseDevice(engine: Engine, kind: DeviceKind, id: string): void {
  if (!engine.desktop) storage.setDevice(kind, id);
  void engine.selectDevice(kind, id);
}

const LABELS: Record<DeviceKind, string> = { microphone: "Microphone", camera: "Camera", speaker: "Speaker" };

/** One picker per kind of device, in the order users expect. */
export function DeviceSelects({ engine, devices }: { engine: Engine; devices: Devices }) {
  return (
    <>
      {DEVICE_KINDS.map((kind) => (
        <DeviceSelect
          key={kind}
          label={LABELS[kind]}
          devices={devicesOf(devices, kind)}
          value={devices[kind]}
          onChange={(id) => chooseDevice(engine, kind, id)}
        />
      ))}
    </>
  );
}

function DeviceSelect({
  label,
  devices,
  value,
  onChange,
}: {
  label: string;
  devices: MediaDeviceInfo[];
  value: string | null;
  onChange: (id: string) => void;
}) {
  return (
    <label>
      {label}
      <select value={value ?? ""} onChange={(e) => onChange(e.target.value)}>
        <option value="">Default</option>
        {devices.map((d, i) => (
          <option key={d.deviceId || i} value={d.deviceId}>
            {d.label || `${label} ${i + 1}`}
          </option>
        ))}
      </select>
    </label>
  );
}
