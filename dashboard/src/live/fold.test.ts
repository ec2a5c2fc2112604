import { describe as suite, expect, it } from "vitest";
import type { EventEnvelope } from "../api/types";
import type { LiveEvent } from "./feed";
import { aggregateOf, describe, fold } from "./fold";

const envelope = (type: string, extra: Partial<EventEnvelope>): LiveEvent => ({
  seq: 1,
  subject: `orch.${type.split(".")[0]}.x.${type.split(".")[1]}`,
  event: {
    event_id: "e",
    type,
    source: "test",
    aggregate_type: type.split(".")[0] ?? "",
    aggregate_id: "abcdef123456",
    aggregate_version: 1,
    session_id: "s1",
    occurred_at: null,
    ...extra,
  },
});

suite("fold", () => {
  it("sorts snapshots by what they update", () => {
    const task = { id: "t1", session_id: "s1", title: "parse", status: "in_progress" } as never;
    const changes = fold([
      envelope("session.started", { session: { session: { id: "s1", title: "IND-1", status: "running" } as never, previous_status: "pending", reason: "" } }),
      envelope("task.started", { task: { task, previous_status: "assigned", reason: "" } }),
      envelope("task.created", { task: { task, previous_status: null, reason: "" } }),
      envelope("agent.busy", { agent: { agent: { id: "a1", name: "AGENT-1" } as never, previous_status: "idle", reason: "" } }),
      envelope("context.updated", { context: { context: null, changes: [] } }),
    ]);
    expect(changes.sessions.map((s) => s.id)).toEqual(["s1"]);
    expect(changes.tasks.get("s1")).toHaveLength(2);
    expect([...changes.graphShape]).toEqual([]);
    expect(changes.agents.map((a) => a.name)).toEqual(["AGENT-1"]);
    expect([...changes.contexts]).toEqual(["s1"]);
  });

  it("describes an event in one line", () => {
    const started = envelope("session.paused", {
      session: { session: { id: "s1", title: "IND-1", status: "paused" } as never, previous_status: "running", reason: "lunch" },
    });
    expect(describe(started.event)).toBe("IND-1 → paused (lunch)");
    expect(describe(envelope("context.updated", {}).event)).toBe("abcdef12");
    expect(aggregateOf("orch.task.s1.t1.started")).toBe("task");
  });
});
