// The video grid: one tile per call member (self view included), laid out
// for 1–8 tiles, with the active speaker highlighted, each remote member's
// connection quality as bars, and an optional stats overlay per remote peer.

import { Icon } from "./icons";
import { useEffect, useRef } from "react";
import type { PeerStats } from "../engine/types";
import { Avatar } from "./Avatar";
import { useEngine, useEngineState } from "./hooks";
import { nameOf } from "../engine/session";
import { linkQuality, QUALITY_LABEL } from "../engine/quality";
import { HAND, ReactionsOverlay } from "./Reactions";

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
    <span className={`quality q-${quality}`} role="img" aria-label={label} title={label} data-testid="quality" data-quality={quality}>
      <i />
      <i />
      <i />
    </span>
  );
}

function Video({ stream, muted, speaker, mirrored }: { stream: MediaStream | null; muted: boolean; speaker: string | null; mirrored?: boolean }) {
  const ref = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (el && el.srcObject !== stream) el.srcObject = stream;
  }, [stream]);
  useEffect(() => {
    const el = ref.current as (HTMLVideoElement & { setSinkId?: (id: string) => Promise<void> }) | null;
    if (el && speaker && el.setSinkId) void el.setSinkId(speaker).catch(() => undefined);
  }, [speaker]);
  return <video ref={ref} autoPlay playsInline muted={muted} className={mirrored ? "mirrored" : undefined} />;
}

/** A member's pictures from the desktop app's native engine, on a canvas. */
function NativeVideo({ member, mirrored }: { member: string; mirrored?: boolean }) {
  const engine = useEngine();
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const canvas = ref.current;
    if (!canvas || !engine.desktop) return;
    return engine.desktop.attachVideo(member, canvas);
  }, [engine, member]);
  return <canvas ref={ref} className={`native-video${mirrored ? " mirrored" : ""}`} data-testid="native-video" data-member={member} />;
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

export function CallGrid({ showStats }: { showStats: boolean }) {
  const engine = useEngine();
  const state = useEngineState();
  const native = !!engine.desktop;
  const self = state.self;
  if (!self || !state.inCall) return null;
  const remoteIds = (state.call?.members ?? []).filter((id) => id !== self.id);
  const ring = state.outgoingRing;
  const count = remoteIds.length + 1 + (ring ? 1 : 0);
  const speakerDevice = state.devices.speaker;
  return (
    <section className={`call-grid tiles-${Math.min(count, 8)}`} aria-label="Call">
      <figure className="tile self" data-testid="tile-self">
        {native && (state.local.video || state.local.screen) ? (
          <NativeVideo member="self" mirrored={!state.local.screen} />
        ) : state.local.stream && (state.local.video || state.local.screen) ? (
          <Video stream={state.local.stream} muted speaker={null} mirrored={!state.local.screen} />
        ) : (
          <div className="tile-avatar">
            <Avatar id={self.id} name={self.name} size={72} />
          </div>
        )}
        <figcaption>
          {self.hand && <HandBadge />}
          You{!state.local.audio && <Icon name="micOff" label="muted" size={14} />}
          {state.local.screen && <span> · sharing screen</span>}
        </figcaption>
      </figure>
      {remoteIds.map((id) => {
        const member = state.members.find((m) => m.id === id);
        const remote = state.remote[id];
        const name = nameOf(state, id);
        const sending = member?.media.video || member?.media.screen;
        const showVideo = (native || remote?.stream) && sending;
        return (
          <figure key={id} className={`tile${state.speaker === id ? " speaking" : ""}`} data-testid="tile-remote" data-peer={id}>
            {native ? sending && <NativeVideo member={id} /> : remote?.stream && <Video stream={remote.stream} muted={false} speaker={speakerDevice} />}
            {!showVideo && (
              <div className="tile-avatar">
                <Avatar id={id} name={name} size={72} speaking={state.speaker === id} />
              </div>
            )}
            <figcaption>
              <QualityBars stats={state.stats[id]} sendsVideo={!!sending} />
              {member?.hand && <HandBadge />}
              {name}
              {member && !member.media.audio && <Icon name="micOff" label="muted" size={14} />}
              {remote && remote.connection !== "connected" && <span className="connection-note"> · {remote.connection === "new" ? "connecting" : remote.connection}</span>}
            </figcaption>
            {showStats && <StatsOverlay stats={state.stats[id]} />}
          </figure>
        );
      })}
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
