import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef } from "react";
import { apiKey, setApiKey, useAuth } from "./api/auth";
import { useFeedStatus } from "./live/LiveProvider";
import { routeOf, usePath, type Route } from "./router";
import { Link } from "./ui/Link";
import { NotLoaded } from "./ui/NotLoaded";
import { OnDemand, useOnDemand } from "./ui/onDemand";
import { AgentsPanel } from "./views/AgentsPanel";
import { CreateSession } from "./views/CreateSession";
import { EventTail } from "./views/EventTail";
import { KeyScreen } from "./views/KeyScreen";
import { SessionMonitor } from "./views/SessionMonitor";

const sessionView = new OnDemand(() => import("./views/SessionDetail"));

function SessionView({ id }: { id: string }) {
  const code = useOnDemand(sessionView);
  if (code.status !== "loaded") return <NotLoaded what="session view" failed={code.status === "failed"} />;
  return <code.value.default id={id} />;
}

const NAV: { href: string; label: string; active: (r: Route) => boolean }[] = [
  { href: "/", label: "Sessions", active: (r) => r.view === "monitor" || r.view === "session" },
  { href: "/sessions/new", label: "New session", active: (r) => r.view === "create" },
  { href: "/agents", label: "Agents", active: (r) => r.view === "agents" },
  { href: "/events", label: "Event tail", active: (r) => r.view === "events" },
];

const TITLES: Record<Route["view"], string> = {
  monitor: "Sessions",
  create: "New session",
  session: "Session",
  agents: "Agents",
  events: "Event tail",
  missing: "Not found",
};

function FeedIndicator() {
  const status = useFeedStatus();
  const live = status === "live";
  return (
    <p role="status" aria-live="polite" data-feed={status} className={`font-mono text-xs uppercase tracking-[0.1em] ${live ? "text-done" : "text-signal"}`}>
      <span aria-hidden="true">{live ? "● " : "○ "}</span>
      {live ? "Live" : status === "stopped" ? "Offline" : status === "connecting" ? "Connecting" : "Reconnecting"}
    </p>
  );
}

function View({ route }: { route: Route }) {
  switch (route.view) {
    case "monitor":
      return <SessionMonitor />;
    case "create":
      return <CreateSession />;
    case "session":
      return <SessionView id={route.id} />;
    case "agents":
      return <AgentsPanel />;
    case "events":
      return <EventTail />;
    case "missing":
      return (
        <div>
          <h1 className="text-2xl font-bold uppercase">Nothing here</h1>
          <p className="mt-2 text-fg-muted">
            No view at <code>{route.path}</code>. <Link href="/" className="underline">Back to the sessions</Link>.
          </p>
        </div>
      );
  }
}

/** Forgets this browser's key; the next request the gateway refuses asks for another. */
function ForgetKey() {
  const client = useQueryClient();
  useAuth(); // shown again once a key is stored
  if (apiKey() === null) return null;
  return (
    <button
      type="button"
      onClick={() => {
        setApiKey(null);
        void client.invalidateQueries();
      }}
      className="font-mono text-xs uppercase tracking-[0.1em] text-fg-muted underline hover:text-fg"
    >
      Forget key
    </button>
  );
}

export function App() {
  const auth = useAuth();
  const path = usePath();
  const route = routeOf(path);
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);
  useEffect(() => {
    document.title = `${TITLES[route.view]} · Orchestrator`;
    // After a change of view, focus goes to the new content (not on the first load).
    if (first.current) first.current = false;
    else main.current?.focus();
  }, [path, route.view]);
  return (
    <div className="flex min-h-screen flex-col">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:z-50 focus:bg-fg focus:px-3 focus:py-2 focus:text-ink">
        Skip to content
      </a>
      <header className="flex flex-wrap items-center gap-x-8 gap-y-2 border-b border-rule-strong px-5 py-3">
        <Link href="/" className="flex items-baseline gap-2 no-underline">
          <span className="text-lg font-black uppercase tracking-[0.02em]" style={{ fontStretch: "125%" }}>
            Orchestrator
          </span>
          <span className="label-caps">glass box</span>
        </Link>
        <nav aria-label="Main" className="flex flex-wrap gap-1">
          {NAV.map((item) => {
            const active = item.active(route);
            return (
              <Link
                key={item.href}
                href={item.href}
                aria-current={active ? "page" : undefined}
                className={`border px-3 py-1 font-mono text-xs uppercase tracking-[0.1em] ${active ? "border-fg bg-fg text-ink" : "border-transparent text-fg hover:border-rule-strong"}`}
              >
                {item.label}
              </Link>
            );
          })}
        </nav>
        <div className="ml-auto flex items-center gap-6">
          <ForgetKey />
          <FeedIndicator />
        </div>
      </header>
      <main id="main" ref={main} tabIndex={-1} className="flex-1 px-5 py-5 focus:outline-none">
        {auth.needed ? <KeyScreen /> : <View route={route} />}
      </main>
    </div>
  );
}
