// Which tile goes where in a call: the grid, or a spotlight (one large tile)
// with a strip of the others. Pure, so the choice is unit tested; CallGrid
// draws it and Room keeps the user's choices (view, pinned tile); the
// desktop app's picture-in-picture window shows the spotlit member too.

import type { EngineState } from "../engine/types";

/** The user's view. */
export type View = "grid" | "spotlight";

/** The tile id of our own view. */
export const SELF = "self";

export interface LayoutInput {
  view: View;
  /** The tile the user pinned, if any (a member id or SELF). */
  pinned: string | null;
  /** Remote members in the call, in call order. */
  remotes: string[];
  /** Remote members sharing their screen, in the order they started. */
  sharing: string[];
  /** The member speaking loudest now, if any. */
  speaker: string | null;
}

export interface Layout {
  view: View;
  /** The large tile (spotlight view only). */
  spotlight: string | null;
  /** Every other tile, in order (the whole grid in grid view). */
  others: string[];
}

/** What is spotlit: the pin, else the newest screen share, else who is
 * speaking, else the first member — never our own view unless alone. */
export function spotlightOf({ pinned, remotes, sharing, speaker }: Omit<LayoutInput, "view">): string {
  if (pinned && (pinned === SELF || remotes.includes(pinned))) return pinned;
  const share = [...sharing].reverse().find((id) => remotes.includes(id));
  if (share) return share;
  if (speaker && remotes.includes(speaker)) return speaker;
  return remotes[0] ?? SELF;
}

export function layoutOf(input: LayoutInput): Layout {
  const tiles = [SELF, ...input.remotes];
  // One tile is a grid of one whatever was asked.
  if (input.view === "grid" || tiles.length === 1) return { view: "grid", spotlight: null, others: tiles };
  const spotlight = spotlightOf(input);
  return { view: "spotlight", spotlight, others: tiles.filter((t) => t !== spotlight) };
}

/** The remote call members and those of them sharing a screen, from the engine's state. */
export function callTiles(state: EngineState): { remotes: string[]; sharing: string[] } {
  const self = state.self?.id;
  const remotes = (state.call?.members ?? []).filter((id) => id !== self);
  const sharing = remotes.filter((id) => state.members.find((m) => m.id === id)?.media.screen);
  return { remotes, sharing };
}

/** The view after the set of screen sharers changed: a share that starts
 * takes the spotlight (the user can go back to the grid). */
export function viewAfterShares(view: View, before: string[], now: string[]): View {
  return now.some((id) => !before.includes(id)) ? "spotlight" : view;
}
