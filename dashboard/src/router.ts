/** Paths of the single-page app, on the History API (the gateway serves index.html for them). */
import { useSyncExternalStore } from "react";

const CHANGE = "orch:navigate";

function subscribe(listener: () => void): () => void {
  window.addEventListener("popstate", listener);
  window.addEventListener(CHANGE, listener);
  return () => {
    window.removeEventListener("popstate", listener);
    window.removeEventListener(CHANGE, listener);
  };
}

export function usePath(): string {
  return useSyncExternalStore(subscribe, () => window.location.pathname);
}

export function navigate(to: string): void {
  if (to === window.location.pathname) return;
  window.history.pushState(null, "", to);
  window.dispatchEvent(new Event(CHANGE));
}

export type Route =
  | { view: "monitor" }
  | { view: "create" }
  | { view: "session"; id: string }
  | { view: "agents" }
  | { view: "events" }
  | { view: "missing"; path: string };

export function routeOf(path: string): Route {
  if (path === "/" || path === "/sessions") return { view: "monitor" };
  if (path === "/sessions/new") return { view: "create" };
  const session = /^\/sessions\/([0-9a-f-]{36})\/?$/.exec(path);
  if (session?.[1]) return { view: "session", id: session[1] };
  if (path === "/agents") return { view: "agents" };
  if (path === "/events") return { view: "events" };
  return { view: "missing", path };
}
