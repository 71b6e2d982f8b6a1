// The signaling socket: one WebSocket to `/ws`, JSON frames in and out,
// app-level `ping` (browsers cannot send WebSocket pings), and reconnection
// with exponential backoff. What to do after a reconnect (resume) is the
// engine's business; this only reports `open`, `message` and `closed`.
//
// A socket can die silently: when the machine's address changes (a laptop
// moving between networks) a TCP connection from the old address neither
// delivers nor fails until TCP gives up, minutes later. So every ping must
// be answered in time, and `probe` asks at once when something else (a
// media path going down) suggests the network changed; a socket that does
// not answer is abandoned — not closed politely, which would wait for the
// dead peer's close frame — and a new one opened at once. A probe also
// opens a spare socket beside the current one: if the spare opens before
// the current socket says anything, the network did change under it, and
// the spare takes over at once (the engine resumes on it) instead of a
// second later; an answer first closes the spare unused.

import type { ClientMessage, ServerMessage } from "../protocol";

export interface SignalingEvents {
  open(): void;
  message(msg: ServerMessage & { rid?: string }): void;
  /** The socket closed; `willRetry` says whether a reconnect is scheduled. */
  closed(code: number, reason: string, willRetry: boolean): void;
}

/** Close codes after which reconnecting cannot help. */
const FINAL_CLOSE_CODES = new Set([1008 /* policy: abuse, bad version */]);

export const PING_INTERVAL_MS = 20_000;
/** A socket not open by then is abandoned and retried (a half-open path,
 *  e.g. a proxy whose upstream is down, would otherwise hang forever). */
export const OPEN_TIMEOUT_MS = 10_000;
export const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];
export const MAX_ATTEMPTS = 12;
/** A periodic ping unanswered this long abandons the socket. */
export const PONG_TIMEOUT_MS = 5_000;
/** A probe (a suspected network change) unanswered this long abandons the
 *  socket: the server answers within a round trip, and a call waits on it. */
export const PROBE_TIMEOUT_MS = 1_000;

/** Closes `socket` without waiting to hear any more from it. */
function abandon(socket: WebSocket): void {
  socket.onopen = socket.onmessage = socket.onclose = null;
  socket.close();
}

/** The delay before reconnect attempt `n` (0-based), with ±20 % jitter. */
export function backoff(attempt: number, random: () => number = Math.random): number {
  const base = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** The signaling URL for a page served by huddle-server (or the Vite proxy). */
export function defaultServerUrl(location: { protocol: string; host: string }): string {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

export class Signaling {
  private socket: WebSocket | null = null;
  private attempts = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  /** Set while a ping waits for its answer (any frame from the server counts). */
  private answerTimer: ReturnType<typeof setTimeout> | null = null;
  private answerDeadline = 0;
  /** A second socket a probe opened beside the one in use (see `probe`). */
  private spare: WebSocket | null = null;
  /** The socket a spare took over from, until the server answers on the
   *  spare. */
  private retiring: WebSocket | null = null;
  private wanted = false;

  constructor(
    private readonly url: string,
    private readonly events: SignalingEvents,
    private readonly createSocket: (url: string) => WebSocket = (u) => new WebSocket(u),
  ) {}

  get isOpen(): boolean {
    return this.socket?.readyState === 1;
  }

  /** Opens the socket (and keeps it open until `close`). */
  connect(): void {
    this.wanted = true;
    if (this.socket) return;
    this.open();
  }

  private open(): void {
    if (this.spare) {
      // A probe's spare is connecting already: it is the next socket.
      this.socket = this.spare;
      this.spare = null;
      return;
    }
    this.socket = this.connecting();
  }

  /** A new socket, wired: once open, it is the socket in use (a spare
   *  first takes over from the current one, see `probe`). */
  private connecting(): WebSocket {
    const socket = this.createSocket(this.url);
    const openTimer = setTimeout(() => {
      if ((this.socket === socket || this.spare === socket) && socket.readyState !== 1) socket.close();
    }, OPEN_TIMEOUT_MS);
    socket.onopen = () => {
      clearTimeout(openTimer);
      if (this.spare === socket) this.takeOver(socket);
      if (this.socket !== socket) return;
      this.attempts = 0;
      this.pingTimer = setInterval(() => this.ping(PONG_TIMEOUT_MS), PING_INTERVAL_MS);
      this.events.open();
    };
    socket.onmessage = (event) => {
      if (this.socket !== socket) return;
      this.answered();
      // The socket in use is alive: a probe's spare is not needed; and
      // the server has answered on it, so the one it replaced has nothing
      // more to bring.
      this.dropSpare();
      this.dropRetiring();
      this.deliver(event.data);
    };
    socket.onclose = (event) => {
      clearTimeout(openTimer);
      if (this.spare === socket) {
        this.spare = null;
        return;
      }
      if (this.socket !== socket) return;
      this.lost(event.code, event.reason, backoff(this.attempts));
    };
    return socket;
  }

  /** A probe's spare opened before the socket in use answered: the old
   *  socket is abandoned (as an unanswered ping abandons it) and the spare
   *  is the socket in use; no `closed` is reported, the engine resumes. */
  private takeOver(spare: WebSocket): void {
    this.spare = null;
    const old = this.socket;
    if (old) {
      console.info("huddle: a new connection to the server opened before the old one answered; moving to it");
      // What the old socket still brings until the server answers on the
      // new one was sent before the switch: delivered, not lost (a socket
      // that was slow rather than dead).
      old.onopen = old.onclose = null;
      old.onmessage = (event) => this.deliver(event.data);
      this.retiring = old;
    }
    // (The old one may have been given up already, its successor due.)
    this.stopTimers();
    this.socket = spare;
  }

  /** No pings, no answer awaited, no reconnect due. */
  private stopTimers(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.answered();
  }

  private deliver(data: unknown): void {
    if (typeof data !== "string") return;
    let msg: ServerMessage & { rid?: string };
    try {
      msg = JSON.parse(data);
    } catch {
      return; // the server only sends JSON; ignore anything else
    }
    if (msg && typeof msg.type === "string") this.events.message(msg);
  }

  private dropRetiring(): void {
    const old = this.retiring;
    if (!old) return;
    this.retiring = null;
    abandon(old);
  }

  private dropSpare(): void {
    const spare = this.spare;
    if (!spare) return;
    this.spare = null;
    abandon(spare);
  }

  /** The current socket is gone: report it and schedule the next one. */
  private lost(code: number, reason: string, delay: number): void {
    this.socket = null;
    this.stopTimers();
    const retry = this.wanted && !FINAL_CLOSE_CODES.has(code) && this.attempts < MAX_ATTEMPTS;
    this.dropRetiring();
    if (!retry) this.dropSpare();
    this.events.closed(code, reason, retry);
    if (retry) {
      this.attempts += 1;
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        if (this.wanted) this.open();
      }, delay);
    }
  }

  /** Sends a ping; if nothing at all arrives within `timeout`, the socket is
   *  dead and abandoned. One deadline at a time: the earlier one stands. */
  private ping(timeout: number): void {
    const socket = this.socket;
    if (!socket || socket.readyState !== 1) return;
    const deadline = Date.now() + timeout;
    if (this.answerTimer && this.answerDeadline <= deadline) return;
    this.answered();
    this.send({ type: "ping" });
    this.answerDeadline = deadline;
    this.answerTimer = setTimeout(() => {
      this.answerTimer = null;
      if (this.socket !== socket) return;
      // Its close handshake would wait for a peer that is gone: detach it,
      // and open the next socket at once (the network is what changed).
      console.info("huddle: the server did not answer a ping; reconnecting");
      abandon(socket);
      this.lost(1006, "no answer to ping", 0);
    }, timeout);
  }

  private answered(): void {
    if (this.answerTimer) clearTimeout(this.answerTimer);
    this.answerTimer = null;
  }

  /** Checks now that the socket still reaches the server (e.g. a media
   *  path just went down, as it does when the machine's address changes). */
  probe(): void {
    const socket = this.socket;
    if (!socket || socket.readyState !== 1) return;
    this.ping(PROBE_TIMEOUT_MS);
    if (!this.spare) this.spare = this.connecting();
  }

  /** Reconnects at once (e.g. the network came back, or the user asked). */
  retryNow(): void {
    this.wanted = true;
    this.attempts = 0;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (!this.socket) this.open();
  }

  /** Sends if open; returns whether it was sent. */
  send(msg: ClientMessage & { rid?: string }): boolean {
    if (!this.socket || this.socket.readyState !== 1) return false;
    this.socket.send(JSON.stringify(msg));
    return true;
  }

  /** Closes for good. */
  close(): void {
    this.wanted = false;
    this.stopTimers();
    this.dropSpare();
    this.dropRetiring();
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000);
  }
}
