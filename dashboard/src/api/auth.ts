/**
 * The API key the dashboard sends. It arrives in the URL's fragment (`#key=…`, as `orch up`
 * prints the address: a fragment never reaches the server or its logs) or is typed into the key
 * screen, and stays in this browser's localStorage. A 401 from the gateway asks for a new one.
 */
import { useSyncExternalStore } from "react";

const STORAGE = "orch.apiKey";

export interface AuthState {
  /** The gateway refused the request for want of a key in force: the key screen shows. */
  needed: boolean;
  /** Bumped when the key changes, so live sockets reconnect with the new one. */
  version: number;
}

let state: AuthState = { needed: false, version: 0 };
let memory: string | null = null; // when localStorage is unavailable (private modes, tests)
const listeners = new Set<() => void>();

function storage(): Storage | null {
  try {
    return typeof localStorage === "undefined" ? null : localStorage;
  } catch {
    return null;
  }
}

export function apiKey(): string | null {
  return storage()?.getItem(STORAGE) ?? memory;
}

export function setApiKey(key: string | null): void {
  const store = storage();
  if (key) store?.setItem(STORAGE, key);
  else store?.removeItem(STORAGE);
  memory = key;
  update({ needed: false, version: state.version + 1 });
}

/** The gateway answered 401: whatever key there is, it is not one in force. */
export function keyRefused(): void {
  if (!state.needed) update({ ...state, needed: true });
}

/** The key in a URL fragment like `#key=orch_…` (other fragment parameters are kept). */
export function keyFromHash(hash: string): { key: string | null; rest: string } {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const key = params.get("key");
  params.delete("key");
  const rest = params.toString();
  return { key: key && key.trim() ? key.trim() : null, rest: rest ? `#${rest}` : "" };
}

/** Takes a key from the page's URL, then removes it from the address bar and history. */
export function adoptKeyFromUrl(): void {
  const { key, rest } = keyFromHash(window.location.hash);
  if (!key) return;
  setApiKey(key);
  window.history.replaceState(window.history.state, "", window.location.pathname + window.location.search + rest);
}

function update(next: AuthState): void {
  state = next;
  for (const listener of listeners) listener();
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function useAuth(): AuthState {
  return useSyncExternalStore(subscribe, () => state);
}
