import { describe, expect, it } from "vitest";
import type { GraphNode, TaskGraph } from "../api/types";
import { criticalPairs, edgesOf, LARGE_GRAPH, layeredLayout, layoutGraph, NODE_HEIGHT, NODE_WIDTH } from "./graph";
import { statusCounts, withStatus } from "./statuses";
import { graphNode } from "./testGraph";

const node = (task_id: string, parent_id = "", on_critical_path = false): GraphNode =>
  graphNode(task_id, { parent_id, on_critical_path });

const dep = (predecessor_id: string, successor_id: string) => ({
  predecessor_id,
  successor_id,
  dependency_type: "finish_to_start",
});

// root with a → b → c and a → d; the path a, b, c is critical.
const graph: TaskGraph = {
  nodes: [node("root"), node("a", "root", true), node("b", "root", true), node("c", "root", true), node("d", "root")],
  edges: [dep("a", "b"), dep("b", "c"), dep("a", "d"), dep("a", "gone")],
  topological_order: [],
  ready_task_ids: [],
  critical_path: { task_ids: ["a", "b", "c"], expected_hours: 3, sigma_hours: 0 },
  expected_finish_at: null,
  computed_at: null,
};

describe("task graph", () => {
  it("keeps edges between present tasks and marks the critical ones", () => {
    expect([...criticalPairs(graph)]).toEqual(["a>b", "b>c"]);
    const edges = edgesOf(graph);
    // b, c and d hang on a through dependencies; only a gets a parent link.
    expect(edges.filter((e) => e.kind === "parent").map((e) => e.target)).toEqual(["a"]);
    expect(edges.filter((e) => e.kind === "dependency").map((e) => [e.id, e.critical])).toEqual([
      ["d:a>b", true],
      ["d:b>c", true],
      ["d:a>d", false],
    ]);
  });

  it("lays dependencies out left to right in layers", () => {
    const layout = layoutGraph(graph);
    const x = Object.fromEntries(layout.nodes.map((n) => [n.id, n.x]));
    expect(x.a).toBeLessThan(x.b as number);
    expect(x.b).toBeLessThan(x.c as number);
    expect(x.root).toBeLessThan(x.a as number);
    expect(layout.nodes.filter((n) => n.critical).map((n) => n.id)).toEqual(["a", "b", "c"]);
    expect(layout.width).toBeGreaterThan(0);
  });

  it("patches one status without rebuilding an unchanged graph", () => {
    const next = withStatus(graph, "b", "in_progress");
    expect(next.nodes.find((n) => n.task_id === "b")?.status).toBe("in_progress");
    expect(withStatus(next, "b", "in_progress")).toBe(next);
    expect(statusCounts(next)).toEqual({ pending: 4, in_progress: 1 });
  });

  it("lays out a thousand tasks", () => {
    const nodes = [node("root")];
    const edges = [];
    for (let chain = 0; chain < 100; chain += 1) {
      for (let step = 0; step < 10; step += 1) {
        nodes.push(node(`t${chain}-${step}`, "root"));
        if (step) edges.push(dep(`t${chain}-${step - 1}`, `t${chain}-${step}`));
      }
    }
    const layout = layoutGraph({ ...graph, nodes, edges, critical_path: null });
    expect(layout.nodes).toHaveLength(1001);
    // Past LARGE_GRAPH tasks, the layered drawing: every dependency points right, the root's
    // column holds it alone, and no two nodes overlap.
    const at = new Map(layout.nodes.map((n) => [n.id, n]));
    for (const e of edges) expect(at.get(e.predecessor_id)?.x).toBeLessThan(at.get(e.successor_id)?.x as number);
    expect(layout.nodes.filter((n) => n.x === at.get("root")?.x)).toHaveLength(1);
    const spots = new Set(layout.nodes.map((n) => `${n.x},${n.y}`));
    expect(spots.size).toBe(1001);
    for (const n of layout.nodes) {
      expect(n.x + NODE_WIDTH).toBeLessThanOrEqual(layout.width);
      expect(n.y + NODE_HEIGHT).toBeLessThanOrEqual(layout.height);
    }
  });

  it("draws a large graph in columns, its critical path marked", () => {
    const nodes = [node("root")];
    const edges = [];
    for (let i = 0; i < LARGE_GRAPH; i += 1) {
      nodes.push(node(`n${i}`, "root", i % 10 === 0));
      if (i >= 10) edges.push(dep(`n${i - 10}`, `n${i}`));
    }
    const layout = layeredLayout({ ...graph, nodes, edges, critical_path: null });
    const x = Object.fromEntries(layout.nodes.map((n) => [n.id, n.x]));
    expect(new Set(Object.values(x)).size).toBe(1 + LARGE_GRAPH / 10);
    expect(x.n0).toBe(x.n9);
    expect(x.n10).toBeGreaterThan(x.n0 as number);
    expect(layout.nodes.filter((n) => n.critical).map((n) => n.id)).toEqual(nodes.filter((n) => n.on_critical_path).map((n) => n.task_id));
    // The columns are centred: the root's lone node sits mid-height.
    const root = layout.nodes.find((n) => n.id === "root");
    expect((root?.y ?? 0) + NODE_HEIGHT / 2).toBeCloseTo(layout.height / 2, 0);
  });
});
