// The observable half every engine shares: the current state, listeners,
// and updates that notify them only when something changed.

import type { EngineState } from "./types";

export abstract class ObservableState {
  private listeners = new Set<() => void>();

  protected constructor(protected state: EngineState) {}

  getState = (): EngineState => this.state;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  protected update(change: (s: EngineState) => EngineState): void {
    const next = change(this.state);
    if (next === this.state) return;
    this.state = next;
    for (const l of this.listeners) l();
  }
}
