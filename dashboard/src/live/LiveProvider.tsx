import { useQueryClient } from "@tanstack/react-query";
import { createContext, useContext, useEffect, useMemo, useSyncExternalStore, type ReactNode } from "react";
import { useAuth } from "../api/auth";
import { browserSocket, LiveFeed, type FeedStatus, type LiveEvent } from "./feed";
import { EventLog } from "./log";
import { applyEvents } from "./sync";

const LogContext = createContext<EventLog | null>(null);
const BACKLOG = 300;

/**
 * One socket on the sessions' and agents' events, feeding the query cache (a session's own view
 * adds its task and context events through its own socket; the event tail opens one for all).
 */
export function LiveProvider({ children }: { children: ReactNode }) {
  const client = useQueryClient();
  const log = useMemo(() => new EventLog(), []);
  // A new key opens the sockets again with it (a refused socket would otherwise wait its backoff).
  const { version } = useAuth();
  useEffect(() => {
    const feed = new LiveFeed({
      path: "/ws/sessions?kinds=session,agent",
      create: browserSocket,
      onEvents: (batch) => applyEvents(client, batch),
      onStatus: (status) => log.setStatus(status),
    });
    feed.start();
    return () => feed.stop();
  }, [client, log, version]);
  return <LogContext.Provider value={log}>{children}</LogContext.Provider>;
}

function useLog(): EventLog {
  const log = useContext(LogContext);
  if (!log) throw new Error("LiveProvider is missing");
  return log;
}

/** Every event of the mesh: the last `BACKLOG`, then live (newest last, the latest 2,000). */
export function useAllEvents(): { events: LiveEvent[]; status: FeedStatus } {
  const log = useMemo(() => new EventLog(), []);
  const { version } = useAuth();
  useEffect(() => {
    const feed = new LiveFeed({
      path: "/ws/sessions",
      backlog: BACKLOG,
      create: browserSocket,
      onEvents: (batch) => log.push(batch),
      onStatus: (status) => log.setStatus(status),
    });
    feed.start();
    return () => feed.stop();
  }, [log, version]);
  return useLogged(log);
}

export function useFeedStatus(): FeedStatus {
  const log = useLog();
  return useSyncExternalStore(log.subscribe, log.statusSnapshot);
}

/**
 * One session's whole story (replayed from the stream's start), then its live events, kept in a
 * log: only the views that read it (`useLogged`) render again as events arrive, not the page.
 */
export function useSessionTimeline(sessionId: string, enabled = true): EventLog {
  const client = useQueryClient();
  // A new log for each session: the old one's events are another session's.
  const log = useMemo(() => new EventLog(5000), [sessionId]);
  const { version } = useAuth();
  useEffect(() => {
    if (!enabled) return;
    const feed = new LiveFeed({
      path: `/ws/sessions/${sessionId}`,
      since: 0,
      create: browserSocket,
      onEvents: (batch) => {
        // Its task and context events keep the view's tasks, graph and contexts current; the
        // replayed ones are older than what was loaded and change nothing.
        applyEvents(client, batch);
        log.push(batch);
      },
      onStatus: (status) => log.setStatus(status),
    });
    feed.start();
    return () => feed.stop();
  }, [client, log, enabled, sessionId, version]);
  return log;
}

/** The events and status of `log`, rendering again when they change. */
export function useLogged(log: EventLog): { events: LiveEvent[]; status: FeedStatus } {
  const events = useSyncExternalStore(log.subscribe, log.snapshot);
  const status = useSyncExternalStore(log.subscribe, log.statusSnapshot);
  return { events, status };
}
