import type { GraphNode } from "../api/types";

/** A task graph node for tests: pending, normal priority, one expected hour, no slack, off the
 * critical path, titled by its id; `fields` change any of that. */
export const graphNode = (task_id: string, fields: Partial<GraphNode> = {}): GraphNode => ({
  task_id,
  parent_id: "",
  title: task_id,
  status: "pending",
  priority: "normal",
  assigned_agent_id: "",
  expected_hours: 1,
  sigma_hours: 0,
  slack_hours: 0,
  on_critical_path: false,
  ...fields,
});
