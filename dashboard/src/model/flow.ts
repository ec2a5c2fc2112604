/** A laid-out task graph as React Flow's nodes and edges. */
import { Position, type Edge, type Node, type NodeHandle } from "@xyflow/react";
import type { GraphNode } from "../api/types";
import { NODE_HEIGHT, NODE_WIDTH, type Layout } from "./graph";

export type TaskData = { task: GraphNode; critical: boolean; awaiting: boolean };
export type TaskNode = Node<TaskData, "task">;

const HANDLE = 6;

/**
 * Where a node's handles sit, as drawn: 6 px, centred on its left and right sides at half its
 * height. Known in advance, React Flow need not draw every node once to measure them, and draws
 * only those in view from the start.
 */
export const HANDLES: NodeHandle[] = [
  { type: "target", position: Position.Left, x: -HANDLE / 2, y: NODE_HEIGHT / 2 - HANDLE / 2, width: HANDLE, height: HANDLE },
  { type: "source", position: Position.Right, x: NODE_WIDTH - HANDLE / 2, y: NODE_HEIGHT / 2 - HANDLE / 2, width: HANDLE, height: HANDLE },
];

export function ariaLabelOf(data: TaskData): string {
  const { task, awaiting, critical } = data;
  return `${task.title}: ${awaiting ? "awaiting approval" : task.status}${critical ? ", on the critical path" : ""}`;
}

/**
 * The nodes of `layout` with each task's current state (`tasks`, by id). A node whose task,
 * place and approval are unchanged is the same object as in `previous`, so a status change
 * redraws one node, not a thousand.
 */
export function flowNodes(
  layout: Layout,
  tasks: ReadonlyMap<string, GraphNode>,
  awaiting: ReadonlySet<string>,
  previous: readonly TaskNode[] = [],
): TaskNode[] {
  const before = new Map(previous.map((node) => [node.id, node]));
  return layout.nodes.map((placed) => {
    const task = tasks.get(placed.id) ?? placed.node;
    const waits = awaiting.has(placed.id);
    const old = before.get(placed.id);
    if (
      old &&
      old.data.task === task &&
      old.data.awaiting === waits &&
      old.data.critical === placed.critical &&
      old.position.x === placed.x &&
      old.position.y === placed.y
    ) {
      return old;
    }
    const data = { task, critical: placed.critical, awaiting: waits };
    return {
      id: placed.id,
      type: "task",
      position: { x: placed.x, y: placed.y },
      width: NODE_WIDTH,
      height: NODE_HEIGHT,
      handles: HANDLES,
      data,
      draggable: false,
      connectable: false,
      ariaLabel: ariaLabelOf(data),
    };
  });
}

const EDGE_STYLE = {
  critical: { stroke: "#eef0ea", strokeWidth: 3 },
  parent: { stroke: "#4a5154", strokeWidth: 1, strokeDasharray: "3 4" },
  dependency: { stroke: "#8d958f", strokeWidth: 1.25 },
};

export function flowEdges(layout: Layout): Edge[] {
  return layout.edges.map((edge) => ({
    id: edge.id,
    source: edge.source,
    target: edge.target,
    focusable: false,
    style: edge.critical ? EDGE_STYLE.critical : EDGE_STYLE[edge.kind],
  }));
}
