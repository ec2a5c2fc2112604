/** Live events into the query cache: snapshots replace what was loaded, shape changes reload. */
import type { QueryClient } from "@tanstack/react-query";
import type { Agent, Session, Task, TaskGraph } from "../api/types";
import { withStatus } from "../model/graph";
import { upsertAll } from "../model/merge";
import type { LiveEvent } from "./feed";
import { fold } from "./fold";

export const keys = {
  sessions: ["sessions"] as const,
  session: (id: string) => ["session", id] as const,
  tasks: (id: string) => ["tasks", id] as const,
  graph: (id: string) => ["graph", id] as const,
  checkpoints: (id: string) => ["checkpoints", id] as const,
  contexts: (id: string) => ["contexts", id] as const,
  context: (contextId: string) => ["context", contextId] as const,
  history: (contextId: string) => ["history", contextId] as const,
  agents: ["agents"] as const,
};

// Critical path and expected finish move as tasks end; reloading them is capped to this often.
const GRAPH_RELOAD_MS = 1500;
const lastGraphReload = new Map<string, number>();

export function applyEvents(client: QueryClient, batch: readonly LiveEvent[]): void {
  const changes = fold(batch);
  if (changes.sessions.length) {
    client.setQueryData<Session[]>(keys.sessions, (list) =>
      list ? upsertAll(list, changes.sessions) : list,
    );
    for (const session of changes.sessions) {
      client.setQueryData<Session>(keys.session(session.id), (old) =>
        !old || old.version <= session.version ? session : old,
      );
    }
  }
  for (const [sessionId, tasks] of changes.tasks) {
    client.setQueryData<Task[]>(keys.tasks(sessionId), (list) => (list ? upsertAll(list, tasks) : list));
    const graph = client.getQueryData<TaskGraph>(keys.graph(sessionId));
    if (!graph) continue;
    const known = new Set(graph.nodes.map((n) => n.task_id));
    let next = graph;
    for (const task of tasks) if (known.has(task.id)) next = withStatus(next, task.id, task.status);
    if (next !== graph) client.setQueryData(keys.graph(sessionId), next);
    const now = Date.now();
    const shapeChanged = changes.graphShape.has(sessionId) || tasks.some((t) => !known.has(t.id));
    if (shapeChanged || now - (lastGraphReload.get(sessionId) ?? 0) > GRAPH_RELOAD_MS) {
      lastGraphReload.set(sessionId, now);
      void client.invalidateQueries({ queryKey: keys.graph(sessionId) });
    }
  }
  if (changes.agents.length) {
    client.setQueryData<Agent[]>(keys.agents, (list) => (list ? upsertAll(list, changes.agents) : list));
  }
  for (const sessionId of changes.checkpoints) {
    void client.invalidateQueries({ queryKey: keys.checkpoints(sessionId) });
  }
  for (const sessionId of changes.contexts) {
    void client.invalidateQueries({ queryKey: keys.contexts(sessionId) });
    void client.invalidateQueries({ queryKey: ["context"] });
    void client.invalidateQueries({ queryKey: ["history"] });
  }
}
