// Invitation links to a room, as both engines make them: the page a
// browser opens (`https://host/r/<room>`, the access token in the fragment,
// which browsers send neither to the server nor in `Referer`) and the
// `huddle://join` link that opens the desktop app.

/** What to hand someone to bring them into a room. */
export interface InviteLinks {
  /** The page a browser opens; null when the server's address says none. */
  web: string | null;
  /** The link that opens the desktop app on the room. */
  app: string;
  /** A hosted server's certificate fingerprint, to compare with the browser's. */
  fingerprint: string | null;
}

/** The page of `room` on the server whose WebSocket is `serverWs`
 * (`wss://host/ws` → `https://host/r/room`), or null if it is not one. */
export function webLink(serverWs: string, room: string, token: string | null): string | null {
  let url: URL;
  try {
    url = new URL(serverWs);
  } catch {
    return null;
  }
  const scheme = url.protocol === "wss:" ? "https:" : url.protocol === "ws:" ? "http:" : null;
  if (!scheme) return null;
  const base = url.pathname.replace(/\/ws\/?$/, "").replace(/\/$/, "");
  return `${scheme}//${url.host}${base}/r/${encodeURIComponent(room)}${token ? `#token=${encodeURIComponent(token)}` : ""}`;
}

/** `huddle://join?server=…&room=…[&token=…]`, as the desktop app reads it. */
export function appLink(serverWs: string, room: string, token: string | null): string {
  const enc = (s: string) =>
    encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `huddle://join?server=${enc(serverWs)}&room=${enc(room)}${token ? `&token=${enc(token)}` : ""}`;
}
