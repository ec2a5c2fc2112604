/** State by shape and label as well as colour. */
import type { AgentStatus, SessionStatus, TaskStatus } from "../api/types";

export type Tone = "live" | "done" | "hold" | "signal" | "muted";

export const TONE_TEXT: Record<Tone, string> = {
  live: "text-live",
  done: "text-done",
  hold: "text-hold",
  signal: "text-signal",
  muted: "text-fg-muted",
};

export const TONE_BORDER: Record<Tone, string> = {
  live: "border-live",
  done: "border-done",
  hold: "border-hold",
  signal: "border-signal",
  muted: "border-rule-strong",
};

type Meta = { glyph: string; tone: Tone };

const SESSION: Record<SessionStatus, Meta> = {
  pending: { glyph: "○", tone: "muted" },
  queued: { glyph: "◌", tone: "muted" },
  running: { glyph: "●", tone: "live" },
  paused: { glyph: "‖", tone: "hold" },
  degraded: { glyph: "◆", tone: "signal" },
  completed: { glyph: "■", tone: "done" },
  partially_completed: { glyph: "◧", tone: "hold" },
  failed: { glyph: "✕", tone: "signal" },
  timeout: { glyph: "✕", tone: "signal" },
  stopped: { glyph: "□", tone: "muted" },
  cancelled: { glyph: "⊘", tone: "muted" },
  orphaned: { glyph: "?", tone: "signal" },
};

const TASK: Record<TaskStatus, Meta> = {
  pending: { glyph: "○", tone: "muted" },
  ready: { glyph: "◎", tone: "muted" },
  assigned: { glyph: "◔", tone: "live" },
  in_progress: { glyph: "●", tone: "live" },
  completed: { glyph: "■", tone: "done" },
  blocked: { glyph: "▲", tone: "hold" },
  paused: { glyph: "‖", tone: "hold" },
  failed: { glyph: "✕", tone: "signal" },
  cancelled: { glyph: "⊘", tone: "muted" },
  skipped: { glyph: "↷", tone: "muted" },
};

const AGENT: Record<AgentStatus, Meta> = {
  registering: { glyph: "◌", tone: "muted" },
  idle: { glyph: "○", tone: "done" },
  busy: { glyph: "●", tone: "live" },
  draining: { glyph: "◐", tone: "hold" },
  offline: { glyph: "✕", tone: "signal" },
  deregistered: { glyph: "⊘", tone: "muted" },
};

const FALLBACK: Meta = { glyph: "·", tone: "muted" };

export function sessionMeta(status: string): Meta {
  return SESSION[status as SessionStatus] ?? FALLBACK;
}

export function taskMeta(status: string, awaitingApproval = false): Meta {
  if (awaitingApproval) return { glyph: "▲", tone: "signal" };
  return TASK[status as TaskStatus] ?? FALLBACK;
}

export function agentMeta(status: string): Meta {
  return AGENT[status as AgentStatus] ?? FALLBACK;
}

export function StatusMark({ meta, label }: { meta: Meta; label: string }) {
  return (
    <span className={`inline-flex items-center gap-1.5 font-mono text-xs uppercase tracking-[0.08em] ${TONE_TEXT[meta.tone]}`}>
      <span aria-hidden="true" className="w-3 text-center">
        {meta.glyph}
      </span>
      <span>{label.replace(/_/g, " ")}</span>
    </span>
  );
}
