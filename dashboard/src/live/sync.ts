/** Live events into the query cache: snapshots replace what was loaded, shape changes reload. */
import type { QueryClient } from "@tanstack/react-query";
import type { Agent, Session, Task, TaskGraph } from "../api/types";
import { withStatus } from "../model/statuses";
import { upsertAll, type Versioned } from "../model/merge";
import type { LiveEvent } from "./feed";
import { fold as sort } from "./fold";

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

/**
 * Snapshots that arrive while a list is still loading, by list: a page fetched before they
 * happened would otherwise hide them until the next reload.
 */
const early = new Map<string, Versioned[]>();

const hash = (key: readonly string[]) => key.join("/");

/** Loads a list with `load`, folding in what live events said meanwhile. */
export async function loadList<T extends Versioned>(key: readonly string[], load: () => Promise<T[]>): Promise<T[]> {
  const id = hash(key);
  early.set(id, []);
  try {
    const items = await load();
    return upsertAll(items, (early.get(id) ?? []) as T[]);
  } finally {
    early.delete(id);
  }
}

function fold<T extends Versioned>(client: QueryClient, key: readonly string[], items: readonly T[]): void {
  early.get(hash(key))?.push(...items);
  client.setQueryData<T[]>(key, (list) => (list ? upsertAll(list, items) : list));
}

// Critical path and expected finish move as tasks end: the graph is reloaded at most this
// often, and soon after new tasks or dependencies (a burst of them is one reload).
const GRAPH_RELOAD_MS = 1500;
const GRAPH_SHAPE_MS = 250;
const lastGraphReload = new Map<string, number>();
const pendingReload = new Map<string, ReturnType<typeof setTimeout>>();

function reloadGraph(client: QueryClient, sessionId: string, delayMs: number): void {
  if (pendingReload.has(sessionId)) return;
  pendingReload.set(
    sessionId,
    setTimeout(() => {
      pendingReload.delete(sessionId);
      lastGraphReload.set(sessionId, Date.now());
      void client.invalidateQueries({ queryKey: keys.graph(sessionId) });
    }, delayMs),
  );
}

export function applyEvents(client: QueryClient, batch: readonly LiveEvent[]): void {
  const changes = sort(batch);
  if (changes.sessions.length) {
    fold<Session>(client, keys.sessions, changes.sessions);
    for (const session of changes.sessions) {
      client.setQueryData<Session>(keys.session(session.id), (old) =>
        !old || old.version <= session.version ? session : old,
      );
    }
  }
  for (const [sessionId, tasks] of changes.tasks) {
    fold<Task>(client, keys.tasks(sessionId), tasks);
    const graph = client.getQueryData<TaskGraph>(keys.graph(sessionId));
    if (!graph) continue;
    // Snapshots older than the graph (a replay of the session's story) are in it already.
    const computedAt = graph.computed_at ? Date.parse(graph.computed_at) : Number.NaN;
    const fresh = tasks.filter((t) => !(t.updated_at && Date.parse(t.updated_at) < computedAt));
    if (!fresh.length) continue;
    const known = new Set(graph.nodes.map((n) => n.task_id));
    // Each touched node takes the newest status known: the loaded task list's, into which these
    // snapshots were just folded (a replayed or late one older than it changes nothing).
    const newest = new Map((client.getQueryData<Task[]>(keys.tasks(sessionId)) ?? []).map((t) => [t.id, t]));
    let next = graph;
    for (const task of fresh) {
      if (!known.has(task.id)) continue;
      next = withStatus(next, task.id, (newest.get(task.id) ?? task).status);
    }
    const shapeChanged = changes.graphShape.has(sessionId) || fresh.some((t) => !known.has(t.id));
    if (next === graph && !shapeChanged) continue; // a replay of what the graph already shows
    client.setQueryData(keys.graph(sessionId), next);
    const since = Date.now() - (lastGraphReload.get(sessionId) ?? 0);
    reloadGraph(client, sessionId, shapeChanged ? GRAPH_SHAPE_MS : Math.max(GRAPH_RELOAD_MS - since, 0));
  }
  if (changes.agents.length) {
    fold<Agent>(client, keys.agents, changes.agents);
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
