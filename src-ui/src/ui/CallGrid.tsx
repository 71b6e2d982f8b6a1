// The call's tiles: one per call member (self view included), as a grid for
// 1–8 tiles or as a spotlight with a strip of the others (./layout decides
// which tile goes where), with the active speaker highlighted, each remote
// member's connection quality as bars, pin / full screen / picture-in-picture
// on every tile, and an optional stats overlay per remote peer.

import { Icon } from "./icons";
import { useEffect, useRef } from "react";
import type { PeerStats } from "../engine/types";
import { Avatar } from "./Avatar";
import { useEngine, useEngineState } from "./hooks";
import { nameOf } from "../engine/session";
import { linkQuality, QUALITY_LABEL } from "../engine/quality";
import { HAND, ReactionsOverlay } from "./Reactions";
import { callTiles, layoutOf, SELF, viewAfterShares, type View } from "./layout";

function HandBadge() {
  return (
    <span className="hand" role="img" aria-label="hand raised" title="Hand raised" data-testid="hand-badge">
      {HAND}{" "}
    </span>
  );
}

/** Three bars: how the member's connection is now (see `linkQuality`). */
function QualityBars({ stats, sendsVideo }: { stats: PeerStats | undefined; sendsVideo: boolean }) {
  const quality = linkQuality(stats, sendsVideo);
  if (!quality) return null;
  const label = QUALITY_LABEL[quality];
  return (
    <span
      className={`quality q-${quality}`}
      role="img"
      aria-label={label}
      title={label}
      data-testid="quality"
      data-quality={quality}
    >
      <i />
      <i />
      <i />
    </span>
  );
}

/**
 * A member's picture, and (unless `muted`) its sound. The sound plays from an
 * `<audio>` element of its own: Chromium does not start a `<video>` whose
 * stream has a video track that never delivered a picture — a member without
 * a camera — and that member's sound stayed silent with it (measured in
 * headless Chromium: `readyState` 0, `play()` never settled).
 */
export function Video({
  stream,
  muted,
  speaker,
  mirrored,
}: {
  stream: MediaStream | null;
  muted: boolean;
  speaker: string | null;
  mirrored?: boolean;
}) {
  const ref = useRef<HTMLVideoElement>(null);
  const sound = useRef<HTMLAudioElement>(null);
  useEffect(() => {
    for (const el of [ref.current, sound.current]) if (el && el.srcObject !== stream) el.srcObject = stream;
  }, [stream, muted]);
  useEffect(() => {
    const el = sound.current as (HTMLAudioElement & { setSinkId?: (id: string) => Promise<void> }) | null;
    if (el && speaker && el.setSinkId) void el.setSinkId(speaker).catch(() => undefined);
  }, [speaker, muted]);
  return (
    <>
      <video ref={ref} autoPlay playsInline muted className={mirrored ? "mirrored" : undefined} />
      {!muted && <audio ref={sound} autoPlay />}
    </>
  );
}

/** A member's pictures from the desktop app's native engine, on a canvas. */
export function NativeVideo({ member, mirrored }: { member: string; mirrored?: boolean }) {
  const engine = useEngine();
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const canvas = ref.current;
    if (!canvas || !engine.desktop) return;
    return engine.desktop.attachVideo(member, canvas);
  }, [engine, member]);
  return (
    <canvas
      ref={ref}
      className={`native-video${mirrored ? " mirrored" : ""}`}
      data-testid="native-video"
      data-member={member}
    />
  );
}

function StatsOverlay({ stats }: { stats: PeerStats | undefined }) {
  if (!stats) return <div className="stats-overlay">waiting for stats…</div>;
  return (
    <dl className="stats-overlay" data-testid="stats">
      <dt>in</dt>
      <dd>{stats.bitrateInKbps} kbps</dd>
      <dt>out</dt>
      <dd>{stats.bitrateOutKbps} kbps</dd>
      <dt>video</dt>
      <dd>
        {stats.width}×{stats.height} @ {Math.round(stats.fps)} fps
      </dd>
      <dt>codec</dt>
      <dd>{stats.codec || "–"}</dd>
      <dt>rtt</dt>
      <dd>{stats.rttMs === null ? "–" : `${stats.rttMs} ms`}</dd>
      <dt>loss</dt>
      <dd>{stats.lossPercent}%</dd>
      <dt>path</dt>
      <dd>{stats.candidateType || "–"}</dd>
    </dl>
  );
}

/** A tile's own controls, shown on hover and on keyboard focus: pin it to
 * the spotlight, full screen (also a double click), picture-in-picture
 * where the browser has it. */
function TileActions({
  id,
  name,
  pinned,
  setPinned,
}: {
  id: string;
  name: string;
  pinned: boolean;
  setPinned: (id: string | null) => void;
}) {
  const toggleFullscreen = (e: React.MouseEvent<HTMLButtonElement>) =>
    void fullscreen(e.currentTarget.closest("figure"));
  const pip = (e: React.MouseEvent<HTMLButtonElement>) => {
    const video = e.currentTarget.closest("figure")?.querySelector("video");
    if (video) void video.requestPictureInPicture().catch(() => undefined);
  };
  const canPip = typeof document !== "undefined" && document.pictureInPictureEnabled;
  return (
    <div className="tile-actions">
      <button
        type="button"
        aria-pressed={pinned}
        onClick={() => setPinned(pinned ? null : id)}
        aria-label={`${pinned ? "Unpin" : "Pin"} ${name}`}
        title={pinned ? "Unpin" : "Pin to the spotlight"}
      >
        <Icon name="pin" />
      </button>
      <button
        type="button"
        onClick={toggleFullscreen}
        aria-label={`Full screen: ${name}`}
        title="Full screen (double click)"
      >
        <Icon name="expand" />
      </button>
      {canPip && (
        <button type="button" onClick={pip} aria-label={`Picture in picture: ${name}`} title="Picture in picture">
          <Icon name="pip" />
        </button>
      )}
    </div>
  );
}

/** Takes `el` full screen, or back. */
async function fullscreen(el: Element | null | undefined): Promise<void> {
  if (!el) return;
  try {
    if (document.fullscreenElement) await document.exitFullscreen();
    else await el.requestFullscreen();
  } catch {
    // Refused (no user gesture, or a webview without it): nothing to do.
  }
}

export interface CallView {
  view: View;
  setView: (view: View) => void;
  pinned: string | null;
  setPinned: (id: string | null) => void;
}

export function CallGrid({ showStats, layout: userLayout }: { showStats: boolean; layout: CallView }) {
  const engine = useEngine();
  const state = useEngineState();
  const native = !!engine.desktop;
  const self = state.self;
  const { remotes: remoteIds, sharing } = callTiles(state);
  const { view, setView, pinned, setPinned } = userLayout;
  // A screen share that starts takes the spotlight.
  const sharers = useRef<string[]>([]);
  const sharingKey = sharing.join(",");
  useEffect(() => {
    const now = sharingKey ? sharingKey.split(",") : [];
    const next = viewAfterShares(view, sharers.current, now);
    sharers.current = now;
    if (next !== view) setView(next);
  }, [sharingKey, view, setView]);
  if (!self || !state.inCall) return null;
  const ring = state.outgoingRing;
  const layout = layoutOf({ view, pinned, remotes: remoteIds, sharing, speaker: state.speaker });
  const speakerDevice = state.devices.speaker;
  const pin = (id: string | null) => {
    setPinned(id);
    if (id) setView("spotlight");
  };

  const tile = (id: string, where: "main" | "strip" | "grid") => {
    const onDoubleClick = (e: React.MouseEvent<HTMLElement>) => void fullscreen(e.currentTarget);
    if (id === SELF) {
      return (
        <figure
          key={SELF}
          className={`tile self ${where}`}
          data-testid="tile-self"
          data-place={where}
          onDoubleClick={onDoubleClick}
        >
          {native && (state.local.video || state.local.screen) ? (
            <NativeVideo member="self" mirrored={!state.local.screen} />
          ) : state.local.stream && (state.local.video || state.local.screen) ? (
            <Video stream={state.local.stream} muted speaker={null} mirrored={!state.local.screen} />
          ) : (
            <div className="tile-avatar">
              <Avatar id={self.id} name={self.name} size={where === "strip" ? 40 : 72} />
            </div>
          )}
          <TileActions id={SELF} name="your own view" pinned={pinned === SELF} setPinned={pin} />
          <figcaption>
            {self.hand && <HandBadge />}
            You{!state.local.audio && <Icon name="micOff" label="muted" size={14} />}
            {state.local.screen && <span> · sharing screen</span>}
          </figcaption>
        </figure>
      );
    }
    const member = state.members.find((m) => m.id === id);
    const remote = state.remote[id];
    const name = nameOf(state, id);
    const sending = member?.media.video || member?.media.screen;
    const showVideo = (native || remote?.stream) && sending;
    return (
      <figure
        key={id}
        className={`tile ${where}${state.speaker === id ? " speaking" : ""}`}
        data-testid="tile-remote"
        data-peer={id}
        data-place={where}
        onDoubleClick={onDoubleClick}
      >
        {native
          ? sending && <NativeVideo member={id} />
          : remote?.stream && <Video stream={remote.stream} muted={false} speaker={speakerDevice} />}
        {!showVideo && (
          <div className="tile-avatar">
            <Avatar id={id} name={name} size={where === "strip" ? 40 : 72} speaking={state.speaker === id} />
          </div>
        )}
        <TileActions id={id} name={name} pinned={pinned === id} setPinned={pin} />
        <figcaption>
          <QualityBars stats={state.stats[id]} sendsVideo={!!sending} />
          {member?.hand && <HandBadge />}
          {name}
          {member && !member.media.audio && <Icon name="micOff" label="muted" size={14} />}
          {member?.media.screen && <span> · screen</span>}
          {remote && remote.connection !== "connected" && (
            <span className="connection-note"> · {remote.connection === "new" ? "connecting" : remote.connection}</span>
          )}
        </figcaption>
        {showStats && where !== "strip" && <StatsOverlay stats={state.stats[id]} />}
      </figure>
    );
  };

  if (layout.view === "spotlight" && layout.spotlight) {
    return (
      <section className="call-grid spotlight-view" aria-label="Call" data-view="spotlight">
        <div className="spotlight-main">{tile(layout.spotlight, "main")}</div>
        <div className="strip" aria-label="Others in the call">
          {layout.others.map((id) => tile(id, "strip"))}
          {ring && <CallingTile id={ring.to} name={ring.toName} />}
        </div>
        <ReactionsOverlay />
      </section>
    );
  }
  const count = layout.others.length + (ring ? 1 : 0);
  return (
    <section className={`call-grid tiles-${Math.min(count, 8)}`} aria-label="Call" data-view="grid">
      {layout.others.map((id) => tile(id, "grid"))}
      {ring && <CallingTile id={ring.to} name={ring.toName} />}
      <ReactionsOverlay />
    </section>
  );
}

/** The member we are ringing, until they answer: "Calling Grace…" and Cancel. */
function CallingTile({ id, name }: { id: string; name: string }) {
  const engine = useEngine();
  return (
    <figure className="tile calling" data-testid="tile-calling" data-peer={id}>
      <div className="tile-avatar">
        <Avatar id={id} name={name} size={72} />
        <p className="calling-text" role="status">
          Calling {name}…
        </p>
        <button type="button" className="danger" onClick={() => engine.cancelRing()}>
          Cancel
        </button>
      </div>
      <figcaption>{name}</figcaption>
    </figure>
  );
}
