// What the lobby remembers between visits (localStorage; the desktop app
// keeps the same keys in its settings store).

const NAME = "huddle.name";
const RECENT = "huddle.recentRooms";
const THEME = "huddle.theme";
const MAX_RECENT = 6;

function read(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function write(key: string, value: string): void {
  try {
    localStorage.setItem(key, value);
  } catch {
    // Private mode or storage full: remembering is a convenience.
  }
}

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
};
