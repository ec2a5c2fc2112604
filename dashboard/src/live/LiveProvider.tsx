import { useQueryClient } from "@tanstack/react-query";
import { createContext, useContext, useEffect, useMemo, useState, useSyncExternalStore, type ReactNode } from "react";
import { browserSocket, LiveFeed, type FeedStatus, type LiveEvent } from "./feed";
import { EventLog } from "./log";
import { applyEvents } from "./sync";

const LogContext = createContext<EventLog | null>(null);

/** One socket on every event of the mesh: it feeds the query cache and the event tail. */
export function LiveProvider({ children }: { children: ReactNode }) {
  const client = useQueryClient();
  const log = useMemo(() => new EventLog(), []);
  useEffect(() => {
    const feed = new LiveFeed({
      path: "/ws/sessions",
      create: browserSocket,
      onEvents: (batch) => {
        applyEvents(client, batch);
        log.push(batch);
      },
      onStatus: (status) => log.setStatus(status),
    });
    feed.start();
    return () => feed.stop();
  }, [client, log]);
  return <LogContext.Provider value={log}>{children}</LogContext.Provider>;
}

function useLog(): EventLog {
  const log = useContext(LogContext);
  if (!log) throw new Error("LiveProvider is missing");
  return log;
}

export function useLiveEvents(): LiveEvent[] {
  const log = useLog();
  return useSyncExternalStore(log.subscribe, log.snapshot);
}

export function useFeedStatus(): FeedStatus {
  const log = useLog();
  return useSyncExternalStore(log.subscribe, log.statusSnapshot);
}

/** One session's whole story (replayed from the stream's start), then its live events. */
export function useSessionTimeline(sessionId: string): { events: LiveEvent[]; status: FeedStatus } {
  const [events, setEvents] = useState<LiveEvent[]>([]);
  const [status, setStatus] = useState<FeedStatus>("connecting");
  useEffect(() => {
    setEvents([]);
    const feed = new LiveFeed({
      path: `/ws/sessions/${sessionId}`,
      since: 0,
      create: browserSocket,
      onEvents: (batch) => setEvents((old) => old.concat(batch).slice(-5000)),
      onStatus: setStatus,
    });
    feed.start();
    return () => feed.stop();
  }, [sessionId]);
  return { events, status };
}
