// The member list: avatar, name, presence, call state and media, with
// actions to ring a member or write to them directly.

import { Icon } from "./icons";
import type { Peer } from "../protocol";
import { Avatar } from "./Avatar";
import { useEngine, useEngineState } from "./hooks";
import { nameOf } from "../engine/session";
import { HAND } from "./Reactions";

function MediaIcons({ peer }: { peer: Peer }) {
  const hand = peer.hand && (
    <span className="hand" role="img" aria-label="hand raised" title="Hand raised">
      {HAND}
    </span>
  );
  if (!peer.in_call) return hand || null;
  return (
    <span className="media-icons">
      {hand}
      <Icon name={peer.media.audio ? "mic" : "micOff"} label={peer.media.audio ? "microphone on" : "muted"} size={15} />
      {peer.media.video && <Icon name="camera" label="camera on" size={15} />}
      {peer.media.screen && <Icon name="screen" label="sharing screen" size={15} />}
    </span>
  );
}

export function Members({ onDirect }: { onDirect: (id: string) => void }) {
  const engine = useEngine();
  const state = useEngineState();
  const self = state.self;
  if (!self) return null;
  const everyone = [self, ...state.members];
  return (
    <aside className="members" aria-label="Members">
      <h2>
        Members <span className="count">{everyone.length}</span>
      </h2>
      <ul>
        {everyone.map((peer) => {
          const isSelf = peer.id === self.id;
          const typing = state.typing[peer.id] !== undefined;
          const inCall = isSelf ? state.inCall : peer.in_call;
          const shown = nameOf(state, peer.id);
          const ringing = state.outgoingRing?.to === peer.id;
          return (
            <li key={peer.id} className="member" data-peer={peer.id}>
              <Avatar id={peer.id} name={peer.name} speaking={state.speaker === peer.id} />
              <span className="member-text">
                <span className="member-name">
                  {shown}
                  {isSelf && <span className="muted"> (you)</span>}
                </span>
                <span className="member-status">
                  {typing
                    ? "typing…"
                    : ringing
                      ? "ringing…"
                      : inCall
                        ? "in call"
                        : peer.client === "desktop"
                          ? "desktop"
                          : peer.client === "bot"
                            ? "bot"
                            : "online"}
                </span>
              </span>
              <MediaIcons peer={peer} />
              {!isSelf && (
                <span className="member-actions">
                  <button
                    type="button"
                    className="icon"
                    title={`Message ${shown} directly`}
                    aria-label={`Message ${shown} directly`}
                    onClick={() => onDirect(peer.id)}
                  >
                    <Icon name="mail" />
                  </button>
                  {!peer.in_call && !state.outgoingRing && (
                    <button
                      type="button"
                      className="icon"
                      title={`Ring ${shown}`}
                      aria-label={`Ring ${shown}`}
                      onClick={() => void engine.ring(peer.id, true)}
                    >
                      <Icon name="phone" />
                    </button>
                  )}
                </span>
              )}
            </li>
          );
        })}
      </ul>
    </aside>
  );
}
