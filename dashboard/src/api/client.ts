/** REST calls to the gateway (`/api/v1`). Errors become `ApiError` with the gateway's code. */
import { apiKey, keyRefused } from "./auth";
import type {
  Agent,
  ApiErrorBody,
  Checkpoint,
  Context,
  ContextChange,
  Json,
  Session,
  Task,
  TaskGraph,
} from "./types";

export const API = "/api/v1";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field: string | null = null,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

function isErrorBody(value: unknown): value is ApiErrorBody {
  if (typeof value !== "object" || value === null || !("error" in value)) return false;
  const error = (value as { error: unknown }).error;
  return typeof error === "object" && error !== null && "message" in error;
}

export async function request<T>(path: string, init: RequestInit = {}): Promise<T> {
  let response: Response;
  const key = apiKey();
  try {
    response = await fetch(API + path, {
      ...init,
      headers: {
        "content-type": "application/json",
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...init.headers,
      },
    });
  } catch (cause) {
    throw new ApiError(0, "unreachable", `The gateway cannot be reached (${String(cause)})`);
  }
  if (response.status === 401) keyRefused();
  const text = await response.text();
  const body: unknown = text ? JSON.parse(text) : null;
  if (!response.ok) {
    if (isErrorBody(body)) {
      const { code, message, field } = body.error;
      throw new ApiError(response.status, code, message, field);
    }
    throw new ApiError(response.status, "http_" + response.status, response.statusText);
  }
  return body as T;
}

const post = <T>(path: string, body: Json = {}): Promise<T> =>
  request<T>(path, { method: "POST", body: JSON.stringify(body) });

interface PageReply {
  next_page_token: string;
  total_size: number;
}

/** Every page of a list, `pageSize` at a time; `onPage` sees the items so far after each. */
async function all<T>(
  path: string,
  key: string,
  pageSize = 500,
  onPage?: (items: T[]) => void,
): Promise<T[]> {
  const items: T[] = [];
  let token = "";
  const sep = path.includes("?") ? "&" : "?";
  for (;;) {
    const url = `${path}${sep}page_size=${pageSize}${token ? `&page_token=${encodeURIComponent(token)}` : ""}`;
    const page = await request<PageReply & Record<string, T[]>>(url);
    items.push(...(page[key] ?? []));
    token = page.next_page_token;
    if (!token) return items;
    onPage?.(items.slice());
  }
}

export const SESSION_ACTIONS = ["start", "pause", "resume", "stop", "cancel", "retry"] as const;
export type SessionAction = (typeof SESSION_ACTIONS)[number];

export interface CreateSessionInput {
  title: string;
  initial_prompt: string;
  description?: string;
  session_type?: string;
  priority?: string;
  model_identifier?: string;
  max_duration_seconds?: number;
  tags?: string[];
  agent_config?: Record<string, string>;
}

export const api = {
  /** All sessions; `onPage` gets the first pages while the rest still load. */
  sessions: (onPage?: (items: Session[]) => void) =>
    all<Session>("/sessions", "sessions", 500, onPage),
  session: (id: string) => request<Session>(`/sessions/${id}`),
  createSession: (input: CreateSessionInput) =>
    post<Session>("/sessions", input as unknown as Json),
  sessionAction: (id: string, action: SessionAction, reason?: string) =>
    post<Session>(`/sessions/${id}/${action}`, reason ? { reason } : {}),
  checkpoints: (id: string) => all<Checkpoint>(`/sessions/${id}/checkpoints`, "checkpoints"),
  tasks: (sessionId: string) => all<Task>(`/tasks?session_id=${sessionId}`, "tasks"),
  graph: (sessionId: string) => request<TaskGraph>(`/sessions/${sessionId}/graph`),
  approveTask: (id: string, comment = "") =>
    post<Task>(`/tasks/${id}/approve`, comment ? { comment } : {}),
  rejectTask: (id: string, comment: string) => post<Task>(`/tasks/${id}/reject`, { comment }),
  agents: () => all<Agent>("/agents", "agents"),
  drainAgent: (id: string) => post<Agent>(`/agents/${id}/drain`),
  contexts: (sessionId: string) =>
    all<Context>(`/contexts?scope=session&owner_id=${sessionId}`, "contexts"),
  context: (id: string) => request<Context>(`/contexts/${id}`),
  history: (contextId: string) =>
    all<ContextChange>(`/contexts/${contextId}/history`, "changes"),
};
