// The lobby: your name, a room by name (case-sensitive), an optional
// password, the live room list and your recent rooms.

import { Icon } from "./icons";
import { useEffect, useState, type FormEvent } from "react";
import { InviteFields } from "./Invite";
import { useEngine, useEngineState } from "./hooks";
import { storage } from "./storage";
import { ServerConfirm } from "./ServerConfirm";

/** The desktop app's server: typed, or hosted by this app. */
function ServerField() {
  const engine = useEngine();
  const state = useEngineState();
  const [server, setServer] = useState(state.desktop?.server ?? "");
  const [hosting, setHosting] = useState(false);
  useEffect(() => setServer(state.desktop?.server ?? ""), [state.desktop?.server]);
  const commit = () => {
    if (server.trim() !== state.desktop?.server) engine.desktop?.setServer(server.trim());
  };
  return (
    <div className="server-field">
      <label>
        Server
        <input
          name="server"
          value={server}
          placeholder="e.g. huddle.example.org or 192.168.1.5:8787"
          onChange={(e) => setServer(e.target.value)}
          onBlur={commit}
          onKeyDown={(e) => e.key === "Enter" && commit()}
          autoComplete="url"
          spellCheck={false}
        />
      </label>
      {!state.desktop?.hosting && (
        <button
          type="button"
          disabled={hosting}
          onClick={() => {
            setHosting(true);
            void engine.desktop?.host().finally(() => setHosting(false));
          }}
          title="Run a Huddle server in this app, for people on your network"
        >
          {hosting ? "Starting…" : "Host a room"}
        </button>
      )}
    </div>
  );
}

/** Where others join the server this app hosts. */
function HostingPanel({ room }: { room: string }) {
  const engine = useEngine();
  const state = useEngineState();
  const hosting = state.desktop?.hosting;
  const [stopping, setStopping] = useState(false);
  if (!hosting) return null;
  return (
    <div className="panel hosting" data-testid="hosting">
      <h2>Hosting on this computer</h2>
      <p className="muted">
        People on your network join with these links{room ? ` (room “${room}”)` : ""}. Each carries this server's
        passcode: share them only with the people you invite. The links stay under “Invite” in the room.
      </p>
      {room ? <InviteFields room={room} /> : <p className="muted">Type a room name to get its links.</p>}
      <button
        type="button"
        className="danger"
        disabled={stopping}
        onClick={() => {
          setStopping(true);
          void engine.desktop?.stopHosting().finally(() => setStopping(false));
        }}
        title="Stop the server in this app: everyone in its rooms is disconnected and the links stop working"
      >
        {stopping ? "Stopping…" : "Stop hosting"}
      </button>
    </div>
  );
}

export function Lobby({ initialRoom }: { initialRoom: string }) {
  const engine = useEngine();
  const state = useEngineState();
  const [name, setName] = useState(storage.name());
  const [room, setRoom] = useState(initialRoom);
  const [password, setPassword] = useState("");
  const recent = storage.recentRooms();
  const connecting = state.status === "connecting";

  useEffect(() => {
    engine.watchRooms(true);
    return () => engine.watchRooms(false);
  }, [engine]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    // Names and rooms as people mean them: " standup " is "standup".
    const n = name.trim();
    const r = room.trim();
    if (!n || !r) return;
    storage.setName(n);
    engine.join({ room: r, name: n, password: password || undefined });
  };

  const locked = state.rooms?.find((r) => r.name === room)?.locked ?? false;

  return (
    <main className="lobby">
      <section className="lobby-card" aria-labelledby="lobby-title">
        <div className="brand">
          <span className="brand-mark" aria-hidden="true" />
          <h1 id="lobby-title">Huddle</h1>
        </div>
        <p className="tagline">Video calls and chat for your team, on your own server.</p>
        {state.desktop?.linkPrompt && (
          <ServerConfirm
            host={state.desktop.linkPrompt.host}
            room={state.desktop.linkPrompt.room}
            onAnswer={(accept) => engine.desktop?.answerLink(accept)}
          />
        )}
        <form onSubmit={submit} className="join-form">
          {engine.desktop && state.desktop && <ServerField />}
          <label>
            Your name
            <input
              name="name"
              value={name}
              maxLength={32}
              autoComplete="nickname"
              placeholder="e.g. Ada"
              onChange={(e) => setName(e.target.value)}
              required
              autoFocus={!name}
            />
          </label>
          <label>
            Room
            <input
              name="room"
              value={room}
              maxLength={64}
              placeholder="e.g. standup"
              onChange={(e) => setRoom(e.target.value)}
              required
              autoFocus={!!name && !room}
            />
          </label>
          <label>
            Password <span className="hint">{locked ? "(this room has one)" : "(optional; locks a new room)"}</span>
            <input
              name="password"
              type="password"
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              autoComplete="off"
            />
          </label>
          {state.error && (
            <p className="form-error" role="alert">
              {state.error.message}
            </p>
          )}
          <button type="submit" className="primary" disabled={connecting || !name.trim() || !room.trim()}>
            {connecting ? "Joining…" : "Join room"}
          </button>
        </form>
      </section>

      <section className="lobby-side">
        {recent.length > 0 && (
          <div className="panel">
            <h2>Recent rooms</h2>
            <ul className="chips">
              {recent.map((r) => (
                <li key={r}>
                  <button type="button" className="chip" onClick={() => setRoom(r)}>
                    {r}
                  </button>
                </li>
              ))}
            </ul>
          </div>
        )}
        {state.desktop?.hosting && <HostingPanel room={room} />}
        <div className="panel">
          <h2>Rooms on this server</h2>
          {state.desktop && !state.desktop.server ? (
            <p className="muted">Enter a server to see its rooms, or host a room on this computer.</p>
          ) : state.rooms === null ? (
            <p className="muted">The room list is not available.</p>
          ) : state.rooms.length === 0 ? (
            <p className="muted">No rooms yet. Name one to start it.</p>
          ) : (
            <ul className="room-list" aria-label="Rooms">
              {state.rooms.map((r) => (
                <li key={r.name}>
                  <button type="button" className="room-row" onClick={() => setRoom(r.name)}>
                    <span className="room-name">
                      <span className="visually-hidden">Choose room </span>
                      {r.locked && <Icon name="lock" label="locked" size={14} />}
                      {r.name}
                    </span>
                    <span className="room-counts">
                      {r.peers} {r.peers === 1 ? "member" : "members"}
                      {r.in_call > 0 && <span className="in-call-badge">{r.in_call} in call</span>}
                    </span>
                  </button>
                </li>
              ))}
            </ul>
          )}
        </div>
      </section>
    </main>
  );
}
