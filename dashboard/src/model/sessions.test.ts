import { describe, expect, it } from "vitest";
import type { Session, SessionStatus } from "../api/types";
import { upsert, upsertAll } from "./merge";
import { allowedActions, countByGroup, formatAge, progressOf, visibleSessions } from "./sessions";

const session = (id: string, status: SessionStatus, created_at: string, extra: Partial<Session> = {}): Session => ({
  id,
  title: `IND-${id}`,
  description: "",
  session_type: "execution",
  priority: "medium",
  status,
  status_updated_at: null,
  status_reason: "",
  agent_config: {},
  model_identifier: "",
  initial_prompt: "p",
  max_duration_seconds: 3600,
  tags: [],
  created_by: "",
  metrics: null,
  limits: null,
  health_score: 1,
  latest_checkpoint: null,
  version: 1,
  created_at,
  updated_at: null,
  error: "",
  ...extra,
});

describe("session rows", () => {
  it("computes progress from the task counts", () => {
    expect(progressOf(session("a", "pending", "")).ratio).toBeNull();
    const metrics = {
      started_at: null, completed_at: null, duration_seconds: 0, retry_count: 0, checkpoint_count: 0,
      usage: null, tasks_total: 4, tasks_completed: 2, tasks_failed: 1, tasks_skipped: 0,
    };
    expect(progressOf(session("a", "running", "", { metrics }))).toEqual({ done: 3, total: 4, ratio: 0.75 });
  });

  it("formats ages compactly", () => {
    const now = Date.parse("2026-01-01T12:00:00Z");
    expect(formatAge("2026-01-01T11:59:15Z", now)).toBe("45s");
    expect(formatAge("2026-01-01T11:00:00Z", now)).toBe("1h");
    expect(formatAge("2025-12-29T12:00:00Z", now)).toBe("3d");
    expect(formatAge(null, now)).toBe("—");
  });

  it("filters by status group and text, newest first", () => {
    const list = [
      session("aaa", "running", "2026-01-01T10:00:00Z", { tags: ["billing"] }),
      session("bbb", "failed", "2026-01-01T11:00:00Z"),
      session("ccc", "completed", "2026-01-01T12:00:00Z"),
    ];
    expect(visibleSessions(list, { group: "all", text: "" }).map((s) => s.id)).toEqual(["ccc", "bbb", "aaa"]);
    expect(visibleSessions(list, { group: "active", text: "" }).map((s) => s.id)).toEqual(["aaa"]);
    expect(visibleSessions(list, { group: "attention", text: "" }).map((s) => s.id)).toEqual(["bbb"]);
    expect(visibleSessions(list, { group: "all", text: "BILL" }).map((s) => s.id)).toEqual(["aaa"]);
    expect(visibleSessions(list, { group: "all", text: "", type: "review" })).toEqual([]);
    expect(visibleSessions(list, { group: "ended", text: "", type: "execution" }).map((s) => s.id)).toEqual(["ccc", "bbb"]);
    expect(countByGroup(list)).toEqual({ all: 3, active: 1, attention: 1, ended: 2 });
  });

  it("sorts by any column, newest first on ties", () => {
    const list = [
      session("aaa", "running", "2026-01-01T10:00:00Z", { health_score: 0.4 }),
      session("bbb", "failed", "2026-01-01T11:00:00Z", { health_score: 0 }),
      session("ccc", "completed", "2026-01-01T12:00:00Z", { health_score: 1 }),
      session("ddd", "pending", "2026-01-01T13:00:00Z", { health_score: 1 }),
    ];
    const all = { group: "all" as const, text: "" };
    expect(visibleSessions(list, all, { key: "health", ascending: true }).map((s) => s.id)).toEqual(["bbb", "aaa", "ddd", "ccc"]);
    expect(visibleSessions(list, all, { key: "age", ascending: false }).map((s) => s.id)).toEqual(["aaa", "bbb", "ccc", "ddd"]);
    expect(visibleSessions(list, all).map((s) => s.id)).toEqual(["ddd", "ccc", "bbb", "aaa"]);
    expect(visibleSessions(list, all, { key: "status", ascending: true }).map((s) => s.status)).toEqual(["completed", "failed", "pending", "running"]);
  });

  it("offers the actions the status machine allows", () => {
    expect(allowedActions("pending")).toEqual(["start", "cancel"]);
    expect(allowedActions("paused")).toEqual(["resume", "stop", "cancel"]);
    expect(allowedActions("completed")).toEqual([]);
  });

  it("folds newer snapshots in and ignores stale ones", () => {
    const a1 = session("a", "pending", "");
    const a2 = { ...a1, status: "running" as const, version: 2 };
    const list = [a1];
    expect(upsert(list, a2)[0]?.status).toBe("running");
    expect(upsert([a2], a1)).toEqual([a2]);
    expect(upsert(list, session("b", "pending", ""))).toHaveLength(2);
    expect(upsertAll([a2], [a1, session("b", "pending", ""), { ...a2, version: 3 }]).map((s) => s.version)).toEqual([3, 1]);
  });
});
