/** The gateway's JSON, as the dashboard reads it: proto field names, lowercase enums, RFC 3339. */

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export const SESSION_STATUSES = [
  "pending",
  "queued",
  "running",
  "paused",
  "degraded",
  "completed",
  "partially_completed",
  "failed",
  "timeout",
  "stopped",
  "cancelled",
  "orphaned",
] as const;
export type SessionStatus = (typeof SESSION_STATUSES)[number];

export const SESSION_TYPES = ["planning", "execution", "review", "debug", "integration"] as const;
export type SessionType = (typeof SESSION_TYPES)[number];

export const SESSION_PRIORITIES = ["critical", "high", "medium", "low", "deferred"] as const;
export type SessionPriority = (typeof SESSION_PRIORITIES)[number];

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  cost_usd: number;
}

export interface SessionMetrics {
  started_at: string | null;
  completed_at: string | null;
  duration_seconds: number;
  retry_count: number;
  checkpoint_count: number;
  usage: Usage | null;
  tasks_total: number;
  tasks_completed: number;
  tasks_failed: number;
  tasks_skipped: number;
}

export interface SessionLimits {
  max_parallel_tasks: number;
  token_budget: number;
  cost_budget_usd: number;
  max_retries: number | null;
}

export interface Checkpoint {
  session_id: string;
  sequence: number;
  data: JsonObject | null;
  created_by: string;
  created_at: string | null;
}

export interface Session {
  id: string;
  title: string;
  description: string;
  session_type: SessionType | string;
  priority: SessionPriority | string;
  status: SessionStatus;
  status_updated_at: string | null;
  status_reason: string;
  agent_config: Record<string, string>;
  model_identifier: string;
  initial_prompt: string;
  max_duration_seconds: number;
  tags: string[];
  created_by: string;
  metrics: SessionMetrics | null;
  limits: SessionLimits | null;
  health_score: number;
  latest_checkpoint: Checkpoint | null;
  version: number;
  created_at: string | null;
  updated_at: string | null;
  error: string;
}

export type TaskStatus =
  | "pending"
  | "ready"
  | "assigned"
  | "in_progress"
  | "completed"
  | "blocked"
  | "paused"
  | "failed"
  | "cancelled"
  | "skipped";

export interface Review {
  approved: boolean;
  comment: string;
}

export interface Task {
  id: string;
  session_id: string;
  parent_id: string;
  title: string;
  description: string;
  status: TaskStatus;
  status_reason: string;
  priority: string;
  assigned_agent_id: string;
  attempt_count: number;
  max_attempts: number;
  requires_approval: boolean;
  awaiting_approval: boolean;
  reviews: Review[];
  error: string;
  usage: Usage | null;
  version: number;
  updated_at: string | null;
}

export interface Dependency {
  predecessor_id: string;
  successor_id: string;
  dependency_type: string;
}

export interface GraphNode {
  task_id: string;
  parent_id: string;
  title: string;
  status: TaskStatus;
  priority: string;
  assigned_agent_id: string;
  expected_hours: number;
  sigma_hours: number;
  slack_hours: number;
  on_critical_path: boolean;
}

export interface TaskGraph {
  nodes: GraphNode[];
  edges: Dependency[];
  topological_order: string[];
  ready_task_ids: string[];
  critical_path: { task_ids: string[]; expected_hours: number; sigma_hours: number } | null;
  expected_finish_at: string | null;
  computed_at: string | null;
}

export type AgentStatus =
  | "registering"
  | "idle"
  | "busy"
  | "draining"
  | "offline"
  | "deregistered";

export interface Agent {
  id: string;
  name: string;
  agent_type: string;
  primary_capabilities: string[];
  secondary_capabilities: string[];
  executor_kind: string;
  model_identifier: string;
  max_concurrent_tasks: number;
  status: AgentStatus;
  status_reason: string;
  performance: {
    tasks_completed: number;
    tasks_failed: number;
    success_rate: number;
    tier: string;
  } | null;
  load: {
    current_tasks: number;
    utilisation: number;
    level: string;
    current_task_ids: string[];
  } | null;
  last_heartbeat_at: string | null;
  version: number;
}

export interface Context {
  id: string;
  scope: string;
  owner_id: string;
  name: string;
  data: JsonObject | null;
  version: number;
  updated_at: string | null;
}

export interface ContextChange {
  path: string;
  old_value: Json;
  new_value: Json;
  changed_by: string;
  changed_at: string | null;
  version: number;
}

/** One message of a live socket. */
export type SocketMessage =
  | { type: "hello"; last_seq: number }
  | { type: "event"; seq: number; subject: string; event: EventEnvelope };

export interface EventEnvelope {
  event_id: string;
  type: string;
  source: string;
  aggregate_type: string;
  aggregate_id: string;
  aggregate_version: number;
  session_id: string;
  occurred_at: string | null;
  session?: {
    session: Session | null;
    previous_status: string | null;
    reason: string;
    checkpoint?: Checkpoint | null;
  } | null;
  task?: {
    task: Task | null;
    previous_status: string | null;
    reason: string;
    dependency?: Dependency | null;
  } | null;
  agent?: { agent: Agent | null; previous_status: string | null; reason: string } | null;
  context?: { context: Context | null; changes: ContextChange[] } | null;
}

/** `{"error": {"code", "message", "field"}}` */
export interface ApiErrorBody {
  error: { code: string; message: string; field: string | null };
}
