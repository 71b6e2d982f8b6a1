// What the lobby remembers between visits: in localStorage in browsers; the
// desktop app plugs in its settings store (`setStorageBackend`).

const NAME = "huddle.name";
const RECENT = "huddle.recentRooms";
const THEME = "huddle.theme";
const JOIN_MICROPHONE = "huddle.joinMicrophone";
const MAX_RECENT = 6;

/** Where the values live, by key. */
export interface StorageBackend {
  read(key: string): string | null;
  write(key: string, value: string): void;
}

const localStorageBackend: StorageBackend = {
  read(key) {
    try {
      return localStorage.getItem(key);
    } catch {
      return null;
    }
  },
  write(key, value) {
    try {
      localStorage.setItem(key, value);
    } catch {
      // Private mode or storage full: remembering is a convenience.
    }
  },
};

let backend = localStorageBackend;

/** Keeps the values somewhere else from now on. */
export function setStorageBackend(other: StorageBackend): void {
  backend = other;
}

export const STORAGE_KEYS = { name: NAME, recentRooms: RECENT, theme: THEME, joinMicrophone: JOIN_MICROPHONE } as const;

const read = (key: string) => backend.read(key);
const write = (key: string, value: string) => backend.write(key, value);

export const storage = {
  name: (): string => read(NAME) ?? "",
  setName: (name: string) => write(NAME, name),
  recentRooms(): string[] {
    try {
      const parsed: unknown = JSON.parse(read(RECENT) ?? "[]");
      return Array.isArray(parsed) ? parsed.filter((r): r is string => typeof r === "string").slice(0, MAX_RECENT) : [];
    } catch {
      return [];
    }
  },
  addRecentRoom(room: string) {
    const rooms = [room, ...storage.recentRooms().filter((r) => r !== room)].slice(0, MAX_RECENT);
    write(RECENT, JSON.stringify(rooms));
  },
  theme: (): "light" | "dark" | null => {
    const t = read(THEME);
    return t === "light" || t === "dark" ? t : null;
  },
  setTheme: (theme: "light" | "dark") => write(THEME, theme),
  /** The device last chosen of a kind (browsers; the desktop app keeps its own in its settings). */
  device: (kind: "microphone" | "camera" | "speaker"): string | null => read(`huddle.device.${kind}`),
  setDevice: (kind: "microphone" | "camera" | "speaker", id: string) => write(`huddle.device.${kind}`, id),
  /** Whether calls are joined with the microphone on (the check's last choice). */
  joinMicrophone: (): boolean => read(JOIN_MICROPHONE) !== "off",
  setJoinMicrophone: (on: boolean) => write(JOIN_MICROPHONE, on ? "on" : "off"),
};
