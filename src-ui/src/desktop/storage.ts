// The UI's remembered values (name, recent rooms, theme, joining calls
// muted or not) kept in the
// desktop app's settings store instead of localStorage.

import { STORAGE_KEYS, type StorageBackend } from "../ui/storage";
import type { DesktopEngine } from "./engine";

export function settingsBackend(engine: DesktopEngine): StorageBackend {
  return {
    read(key) {
      const s = engine.currentSettings();
      if (!s) return null;
      switch (key) {
        case STORAGE_KEYS.name:
          return s.name;
        case STORAGE_KEYS.recentRooms:
          return JSON.stringify(s.recentRooms);
        case STORAGE_KEYS.theme:
          return s.theme;
        case STORAGE_KEYS.joinMicrophone:
          return s.joinMicrophone ? "on" : "off";
        default:
          return null;
      }
    },
    write(key, value) {
      engine.saveSettings((s) => {
        switch (key) {
          case STORAGE_KEYS.name:
            return { ...s, name: value };
          case STORAGE_KEYS.recentRooms: {
            const parsed: unknown = JSON.parse(value);
            return Array.isArray(parsed)
              ? { ...s, recentRooms: parsed.filter((r): r is string => typeof r === "string") }
              : s;
          }
          case STORAGE_KEYS.theme:
            return { ...s, theme: value === "light" || value === "dark" ? value : null };
          case STORAGE_KEYS.joinMicrophone:
            return { ...s, joinMicrophone: value !== "off" };
          default:
            return s;
        }
      });
    },
  };
}
