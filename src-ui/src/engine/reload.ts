// What a browser tab keeps across a reload so that the member comes back
// as themselves (same id, the others see no leave) within the server's
// resume grace: the room, the name, the single-use resume token and whether
// they were in the call. Written to sessionStorage (this tab only) when the
// page goes away, taken out — and removed — when the next page starts. A
// password is never kept: if the membership has expired, a locked room
// asks for it again.

/** The tab's sessionStorage, or a fake in tests. */
export type TabStore = Pick<Storage, "getItem" | "setItem" | "removeItem">;

export interface KeptMembership {
  /** The signaling server it belongs to. */
  server: string;
  room: string;
  name: string;
  resume: string;
  /** In the call, and with the camera on, when the page went away. */
  call: { video: boolean } | null;
  /** When the page went away (ms since the epoch). */
  keptAt: number;
}

const KEY = "huddle.membership";

/** A kept membership older than this is not tried (the server's grace
 * period is 15 s by default; a longer one is still honoured up to here). */
export const KEEP_MS = 60_000;

export function keepMembership(store: TabStore | null, kept: KeptMembership): void {
  try {
    store?.setItem(KEY, JSON.stringify(kept));
  } catch {
    /* storage full or disabled: the reload starts in the lobby */
  }
}

/** The membership kept for `server` by the page before this one, if recent;
 * it is removed either way (a token is tried once). */
export function takeMembership(store: TabStore | null, server: string, now: number): KeptMembership | null {
  let text: string | null = null;
  try {
    text = store?.getItem(KEY) ?? null;
    store?.removeItem(KEY);
  } catch {
    return null;
  }
  if (!text) return null;
  try {
    const kept = JSON.parse(text) as Partial<KeptMembership>;
    const fresh = typeof kept.keptAt === "number" && now - kept.keptAt >= 0 && now - kept.keptAt < KEEP_MS;
    const whole = typeof kept.room === "string" && typeof kept.name === "string" && typeof kept.resume === "string";
    if (!fresh || !whole || kept.server !== server) return null;
    const call = kept.call && typeof kept.call === "object" ? { video: kept.call.video === true } : null;
    return { server, room: kept.room!, name: kept.name!, resume: kept.resume!, call, keptAt: kept.keptAt! };
  } catch {
    return null;
  }
}
