/**
 * A graph's task statuses, apart from its layout: the page's entry code (live updates) needs
 * these, and the layout (dagre among it) then loads only with the graph view.
 */
import type { TaskGraph, TaskStatus } from "../api/types";

/** The graph with one task's status changed, for live updates between two reloads. */
export function withStatus(graph: TaskGraph, taskId: string, status: TaskStatus): TaskGraph {
  let changed = false;
  const nodes = graph.nodes.map((node) => {
    if (node.task_id !== taskId || node.status === status) return node;
    changed = true;
    return { ...node, status };
  });
  return changed ? { ...graph, nodes } : graph;
}

export function statusCounts(graph: TaskGraph): Partial<Record<TaskStatus, number>> {
  const counts: Partial<Record<TaskStatus, number>> = {};
  for (const node of graph.nodes) counts[node.status] = (counts[node.status] ?? 0) + 1;
  return counts;
}
