/** Shaping sessions for the monitor: progress, age, filters, order. */
import type { Session, SessionStatus } from "../api/types";

export const ACTIVE: ReadonlySet<SessionStatus> = new Set(["pending", "queued", "running", "paused", "degraded"]);

export type StatusGroup = "all" | "active" | "attention" | "ended";

const ATTENTION: ReadonlySet<SessionStatus> = new Set(["failed", "timeout", "degraded", "orphaned"]);

export function inGroup(status: SessionStatus, group: StatusGroup): boolean {
  switch (group) {
    case "all":
      return true;
    case "active":
      return ACTIVE.has(status);
    case "attention":
      return ATTENTION.has(status);
    case "ended":
      return !ACTIVE.has(status);
  }
}

export interface Progress {
  done: number;
  total: number;
  /** 0..1, or null before the session has tasks. */
  ratio: number | null;
}

export function progressOf(session: Session): Progress {
  const m = session.metrics;
  const total = m?.tasks_total ?? 0;
  const done = (m?.tasks_completed ?? 0) + (m?.tasks_failed ?? 0) + (m?.tasks_skipped ?? 0);
  return { done, total, ratio: total > 0 ? Math.min(done / total, 1) : null };
}

/** "42s", "7m", "3h", "2d": compact, for a dense table. */
export function formatAge(fromIso: string | null, now: number): string {
  if (!fromIso) return "—";
  const seconds = Math.max(0, Math.floor((now - Date.parse(fromIso)) / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

export interface SessionFilter {
  group: StatusGroup;
  text: string;
  /** A session type, or "" for every type. */
  type?: string;
}

export function matches(session: Session, filter: SessionFilter): boolean {
  if (!inGroup(session.status, filter.group)) return false;
  if (filter.type && session.session_type !== filter.type) return false;
  const needle = filter.text.trim().toLowerCase();
  if (!needle) return true;
  return (
    session.title.toLowerCase().includes(needle) ||
    session.id.startsWith(needle) ||
    session.tags.some((tag) => tag.toLowerCase().includes(needle)) ||
    session.status.includes(needle)
  );
}

/** Newest first. */
export function byNewest(a: Session, b: Session): number {
  return (b.created_at ?? "").localeCompare(a.created_at ?? "") || a.id.localeCompare(b.id);
}

export type SortKey = "age" | "health" | "progress" | "status" | "title";
export interface Sort {
  key: SortKey;
  /** Ascending means: youngest, least healthy, least done, or A to Z first. */
  ascending: boolean;
}

const COMPARE: Record<SortKey, (a: Session, b: Session) => number> = {
  age: (a, b) => (b.created_at ?? "").localeCompare(a.created_at ?? ""),
  health: (a, b) => a.health_score - b.health_score,
  progress: (a, b) => (progressOf(a).ratio ?? -1) - (progressOf(b).ratio ?? -1),
  status: (a, b) => a.status.localeCompare(b.status),
  title: (a, b) => a.title.localeCompare(b.title),
};

/** The sessions a filter lets through, in the chosen order (newest first by default); ties
 * fall back to newest first, so the order is stable. */
export function visibleSessions(
  sessions: readonly Session[],
  filter: SessionFilter,
  sort: Sort = { key: "age", ascending: true },
): Session[] {
  const compare = COMPARE[sort.key];
  const direction = sort.ascending ? 1 : -1;
  return sessions
    .filter((session) => matches(session, filter))
    .sort((a, b) => direction * compare(a, b) || byNewest(a, b));
}

export function countByGroup(sessions: readonly Session[]): Record<StatusGroup, number> {
  const counts: Record<StatusGroup, number> = { all: 0, active: 0, attention: 0, ended: 0 };
  for (const session of sessions) {
    counts.all += 1;
    if (ACTIVE.has(session.status)) counts.active += 1;
    else counts.ended += 1;
    if (ATTENTION.has(session.status)) counts.attention += 1;
  }
  return counts;
}

/** Which actions make sense from a status (the service still has the last word). */
export function allowedActions(status: SessionStatus): string[] {
  switch (status) {
    case "pending":
    case "queued":
      return ["start", "cancel"];
    case "running":
    case "degraded":
      return ["pause", "stop"];
    case "paused":
      return ["resume", "stop", "cancel"];
    case "failed":
    case "timeout":
      return ["retry"];
    default:
      return [];
  }
}
