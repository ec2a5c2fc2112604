/**
 * Code loaded on demand, shown as soon as it is in. Not `lazy` and Suspense: React holds a
 * suspended boundary's content back until 300 ms after its fallback appeared (so that loading
 * states do not flicker), which delayed each view loaded that way by up to that much.
 */
import { useEffect, useSyncExternalStore } from "react";

export type Loading<T> =
  | { status: "idle" | "loading" }
  | { status: "loaded"; value: T }
  | { status: "failed"; error: unknown };

export class OnDemand<T> {
  private state: Loading<T> = { status: "idle" };
  private listeners = new Set<() => void>();

  constructor(private readonly load: () => Promise<T>) {}

  /** Starts loading, once; later calls change nothing (a failure stays until the page reloads). */
  start = (): void => {
    if (this.state.status !== "idle") return;
    this.set({ status: "loading" });
    this.load().then(
      (value) => this.set({ status: "loaded", value }),
      (error: unknown) => this.set({ status: "failed", error }),
    );
  };

  snapshot = (): Loading<T> => this.state;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  private set(state: Loading<T>): void {
    this.state = state;
    for (const listener of this.listeners) listener();
  }
}

/** The state of `code`, loading it if nothing has yet. */
export function useOnDemand<T>(code: OnDemand<T>): Loading<T> {
  const state = useSyncExternalStore(code.subscribe, code.snapshot);
  useEffect(code.start, [code]);
  return state;
}
