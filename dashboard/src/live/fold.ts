/** What a batch of live events changes, sorted by the data each view holds. */
import type { Agent, Session, Task } from "../api/types";
import type { LiveEvent } from "./feed";

export interface Changes {
  sessions: Session[];
  tasks: Map<string, Task[]>;
  agents: Agent[];
  /** Sessions whose graph shape may have changed (new tasks, dependencies): reload it. */
  graphShape: Set<string>;
  contexts: Set<string>;
  checkpoints: Set<string>;
}

// New tasks show as ids the graph lacks; these change edges between tasks it has.
const SHAPE_EVENTS = new Set(["task.dependency_added", "task.dependency_removed"]);

export function fold(batch: readonly LiveEvent[]): Changes {
  const changes: Changes = {
    sessions: [],
    tasks: new Map(),
    agents: [],
    graphShape: new Set(),
    contexts: new Set(),
    checkpoints: new Set(),
  };
  for (const { event } of batch) {
    const session = event.session?.session;
    if (session) {
      changes.sessions.push(session);
      if (event.type === "session.checkpoint_added" || event.session?.checkpoint) changes.checkpoints.add(session.id);
    }
    const task = event.task?.task;
    if (task) {
      const list = changes.tasks.get(task.session_id) ?? [];
      list.push(task);
      changes.tasks.set(task.session_id, list);
      if (SHAPE_EVENTS.has(event.type) || event.task?.dependency) changes.graphShape.add(task.session_id);
    }
    const agent = event.agent?.agent;
    if (agent) changes.agents.push(agent);
    if (event.context && event.session_id) changes.contexts.add(event.session_id);
  }
  return changes;
}

/** A short line for the event tail: what happened to what. */
export function describe(event: LiveEvent["event"]): string {
  const name = event.session?.session?.title ?? event.task?.task?.title ?? event.agent?.agent?.name;
  const reason = event.session?.reason || event.task?.reason || event.agent?.reason || "";
  const status =
    event.session?.session?.status ?? event.task?.task?.status ?? event.agent?.agent?.status ?? "";
  const parts = [name ?? event.aggregate_id.slice(0, 8), status && `→ ${status}`, reason && `(${reason})`];
  return parts.filter(Boolean).join(" ");
}

export function aggregateOf(subject: string): string {
  return subject.split(".")[1] ?? "";
}
