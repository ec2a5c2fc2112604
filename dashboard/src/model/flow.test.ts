import { describe, expect, it } from "vitest";
import type { GraphNode, TaskGraph } from "../api/types";
import { ariaLabelOf, flowEdges, flowNodes, HANDLES } from "./flow";
import { layoutGraph, NODE_HEIGHT, NODE_WIDTH } from "./graph";
import { withStatus } from "./statuses";
import { graphNode } from "./testGraph";

const node = (task_id: string, parent_id = ""): GraphNode =>
  graphNode(task_id, { parent_id, title: `task ${task_id}` });

const graph: TaskGraph = {
  nodes: [node("a"), node("b"), node("c")],
  edges: [
    { predecessor_id: "a", successor_id: "b", dependency_type: "finish_to_start" },
    { predecessor_id: "a", successor_id: "c", dependency_type: "finish_to_start" },
  ],
  topological_order: [],
  ready_task_ids: [],
  critical_path: { task_ids: ["a", "b"], expected_hours: 2, sigma_hours: 0 },
  expected_finish_at: null,
  computed_at: null,
};

const byId = (g: TaskGraph) => new Map(g.nodes.map((n) => [n.task_id, n]));

describe("React Flow nodes and edges", () => {
  it("places the handles mid-height on the left and right sides", () => {
    const [target, source] = HANDLES;
    expect(target).toMatchObject({ type: "target", position: "left", x: -3, y: NODE_HEIGHT / 2 - 3, width: 6, height: 6 });
    expect(source).toMatchObject({ type: "source", position: "right", x: NODE_WIDTH - 3, y: NODE_HEIGHT / 2 - 3 });
  });

  it("builds each node with its task, state and label", () => {
    const layout = layoutGraph(graph);
    const nodes = flowNodes(layout, byId(graph), new Set(["c"]));
    expect(nodes.map((n) => [n.id, n.data.critical, n.data.awaiting])).toEqual([
      ["a", true, false],
      ["b", true, false],
      ["c", false, true],
    ]);
    expect(nodes[0]?.handles).toBe(HANDLES);
    expect(nodes.map((n) => n.ariaLabel)).toEqual([
      "task a: pending, on the critical path",
      "task b: pending, on the critical path",
      "task c: awaiting approval",
    ]);
    expect(ariaLabelOf({ task: node("x"), critical: false, awaiting: false })).toBe("task x: pending");
  });

  it("keeps the nodes whose task and approval did not change", () => {
    const layout = layoutGraph(graph);
    const before = flowNodes(layout, byId(graph), new Set());
    const next = withStatus(graph, "b", "in_progress");
    const after = flowNodes(layout, byId(next), new Set(), before);
    expect(after[0]).toBe(before[0]);
    expect(after[1]).not.toBe(before[1]);
    expect(after[1]?.data.task.status).toBe("in_progress");
    expect(after[2]).toBe(before[2]);
    const approving = flowNodes(layout, byId(next), new Set(["a"]), after);
    expect(approving[0]).not.toBe(after[0]);
    expect(approving[2]).toBe(after[2]);
  });

  it("draws the critical edges heavy", () => {
    const edges = flowEdges(layoutGraph(graph));
    expect(edges.map((e) => [e.id, e.style?.strokeWidth])).toEqual([
      ["d:a>b", 3],
      ["d:a>c", 1.25],
    ]);
  });
});
