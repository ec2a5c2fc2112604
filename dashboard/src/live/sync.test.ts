import { QueryClient } from "@tanstack/react-query";
import { describe, expect, it } from "vitest";
import type { Session, Task, TaskGraph } from "../api/types";
import type { LiveEvent } from "./feed";
import { applyEvents, keys, loadList } from "./sync";

const session = (id: string, version: number, status = "pending") => ({ id, version, status, title: id }) as unknown as Session;
const created = (s: Session): LiveEvent => ({
  seq: s.version,
  subject: `orch.session.${s.id}.x`,
  event: { type: "session.x", session: { session: s, previous_status: null, reason: "" } } as LiveEvent["event"],
});

describe("live events into the query cache", () => {
  it("patches a loaded list and the single view, newer versions only", () => {
    const client = new QueryClient();
    client.setQueryData(keys.sessions, [session("a", 1)]);
    applyEvents(client, [created(session("a", 2, "running")), created(session("b", 1))]);
    expect(client.getQueryData<Session[]>(keys.sessions)?.map((s) => [s.id, s.status])).toEqual([
      ["a", "running"],
      ["b", "pending"],
    ]);
    applyEvents(client, [created(session("a", 1))]);
    expect(client.getQueryData<Session>(keys.session("a"))?.version).toBe(2);
  });

  it("keeps what arrives while the list is still loading", async () => {
    const client = new QueryClient();
    let finish: (items: Session[]) => void = () => undefined;
    const loading = loadList(keys.sessions, () => new Promise<Session[]>((resolve) => (finish = resolve)));
    applyEvents(client, [created(session("new", 1)), created(session("old", 3, "paused"))]);
    finish([session("old", 2, "running")]);
    expect((await loading).map((s) => [s.id, s.status])).toEqual([
      ["old", "paused"],
      ["new", "pending"],
    ]);
  });
});

describe("a session's graph", () => {
  const task = (version: number, status: string) => ({ id: "t", session_id: "s", version, status }) as unknown as Task;
  const taskEvent = (t: Task): LiveEvent => ({
    seq: t.version,
    subject: "orch.task.s.t.x",
    event: { type: "task.x", task: { task: t, previous_status: null, reason: "" } } as LiveEvent["event"],
  });
  const graph = { nodes: [{ task_id: "t", status: "completed" }], edges: [], critical_path: null } as unknown as TaskGraph;

  it("takes live statuses, but never an older one replayed after a newer", () => {
    const client = new QueryClient();
    client.setQueryData(keys.tasks("s"), [task(5, "completed")]);
    client.setQueryData(keys.graph("s"), graph);
    applyEvents(client, [taskEvent(task(2, "in_progress"))]);
    expect(client.getQueryData<TaskGraph>(keys.graph("s"))?.nodes[0]?.status).toBe("completed");
    applyEvents(client, [taskEvent(task(6, "failed"))]);
    expect(client.getQueryData<TaskGraph>(keys.graph("s"))?.nodes[0]?.status).toBe("failed");
  });

  it("ignores snapshots older than the graph, also before the task list is loaded", () => {
    const client = new QueryClient();
    const computed = { ...graph, computed_at: "2026-01-01T10:00:00.000500Z" };
    client.setQueryData(keys.graph("s"), computed);
    const at = (updated_at: string, status: string) => ({ ...task(1, status), updated_at }) as Task;
    // A replayed snapshot from before the graph, of a task it has or lacks: nothing changes.
    applyEvents(client, [taskEvent(at("2026-01-01T09:59:59.000000Z", "pending")), taskEvent({ ...at("2026-01-01T09:00:00Z", "pending"), id: "gone" })]);
    expect(client.getQueryData<TaskGraph>(keys.graph("s"))).toBe(computed);
    // One from the graph's millisecond or later is applied.
    applyEvents(client, [taskEvent(at("2026-01-01T10:00:00.000900Z", "failed"))]);
    expect(client.getQueryData<TaskGraph>(keys.graph("s"))?.nodes[0]?.status).toBe("failed");
  });
});
