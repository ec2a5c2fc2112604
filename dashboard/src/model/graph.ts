/** A session's task graph laid out in layers, critical path marked, ready for drawing. */
import dagre from "@dagrejs/dagre";
import type { GraphNode, TaskGraph } from "../api/types";
import { columnsOf, orderColumns } from "./layers";

export const NODE_WIDTH = 220;
export const NODE_HEIGHT = 64;
const NODE_GAP = 18;
const COLUMN_GAP = 56;
const MARGIN = 16;
/** Past this many tasks the graph is laid out by `layeredLayout`, not dagre. */
export const LARGE_GRAPH = 150;

export interface PlacedNode {
  id: string;
  x: number;
  y: number;
  node: GraphNode;
  critical: boolean;
}

export interface PlacedEdge {
  id: string;
  source: string;
  target: string;
  kind: "dependency" | "parent";
  critical: boolean;
}

export interface Layout {
  nodes: PlacedNode[];
  edges: PlacedEdge[];
  width: number;
  height: number;
}

/** Consecutive pairs of the critical path, as `a>b` keys. */
export function criticalPairs(graph: TaskGraph): Set<string> {
  const ids = graph.critical_path?.task_ids ?? [];
  const pairs = new Set<string>();
  for (let i = 1; i < ids.length; i += 1) pairs.add(`${ids[i - 1]}>${ids[i]}`);
  return pairs;
}

/**
 * Dependencies, plus a parent link to each child that no sibling precedes (the others hang on
 * those through their dependencies): fewer lines to read, and far fewer for the layout to route.
 */
export function edgesOf(graph: TaskGraph): PlacedEdge[] {
  const present = new Set(graph.nodes.map((n) => n.task_id));
  const preceded = new Set(
    graph.edges.filter((d) => present.has(d.predecessor_id)).map((d) => d.successor_id),
  );
  const pairs = criticalPairs(graph);
  const edges: PlacedEdge[] = [];
  for (const node of graph.nodes) {
    if (node.parent_id && present.has(node.parent_id) && !preceded.has(node.task_id)) {
      edges.push({
        id: `p:${node.parent_id}>${node.task_id}`,
        source: node.parent_id,
        target: node.task_id,
        kind: "parent",
        critical: false,
      });
    }
  }
  for (const dep of graph.edges) {
    if (!present.has(dep.predecessor_id) || !present.has(dep.successor_id)) continue;
    const key = `${dep.predecessor_id}>${dep.successor_id}`;
    edges.push({
      id: `d:${key}`,
      source: dep.predecessor_id,
      target: dep.successor_id,
      kind: "dependency",
      critical: pairs.has(key),
    });
  }
  return edges;
}

function criticalOf(graph: TaskGraph): (node: GraphNode) => boolean {
  const critical = new Set(graph.critical_path?.task_ids ?? []);
  return (node) => critical.has(node.task_id) || node.on_critical_path;
}

/** Positions (top-left corners) for every node, left to right by dependency layers: dagre's
 * tidy drawing for a small graph, `layeredLayout` past `LARGE_GRAPH` tasks. */
export function layoutGraph(graph: TaskGraph): Layout {
  if (graph.nodes.length > LARGE_GRAPH) return layeredLayout(graph);
  const g = new dagre.graphlib.Graph({ multigraph: false });
  g.setGraph({ rankdir: "LR", nodesep: NODE_GAP, ranksep: COLUMN_GAP, marginx: MARGIN, marginy: MARGIN });
  g.setDefaultEdgeLabel(() => ({}));
  for (const node of graph.nodes) g.setNode(node.task_id, { width: NODE_WIDTH, height: NODE_HEIGHT });
  const edges = edgesOf(graph);
  for (const edge of edges) {
    // Dependencies decide the layers; the parent link only pulls a parent before its children.
    g.setEdge(edge.source, edge.target, { weight: edge.kind === "dependency" ? 4 : 1, minlen: 1 });
  }
  dagre.layout(g);
  const critical = criticalOf(graph);
  const nodes = graph.nodes.map((node) => {
    const placed = g.node(node.task_id);
    return {
      id: node.task_id,
      x: (placed?.x ?? 0) - NODE_WIDTH / 2,
      y: (placed?.y ?? 0) - NODE_HEIGHT / 2,
      node,
      critical: critical(node),
    };
  });
  const size = g.graph();
  return { nodes, edges, width: size.width ?? 0, height: size.height ?? 0 };
}

/**
 * The same drawing for a large graph, quick enough for the main thread (about 20 ms for 1,000
 * tasks, where dagre takes a second or more): columns by dependency, each column's order chosen
 * for few crossings (see `layers`), and each column centred on the tallest.
 */
export function layeredLayout(graph: TaskGraph): Layout {
  const edges = edgesOf(graph);
  const ids = graph.nodes.map((n) => n.task_id);
  const column = columnsOf(ids, edges);
  const columns: string[][] = [];
  for (const id of ids) {
    const at = column.get(id) ?? 0;
    (columns[at] ??= []).push(id);
  }
  const order = orderColumns(Array.from(columns, (c) => c ?? []), edges);
  const tallest = order.reduce((most, c) => Math.max(most, c.length), 0);
  const place = new Map<string, { x: number; y: number }>();
  order.forEach((ids, at) => {
    const top = MARGIN + ((tallest - ids.length) * (NODE_HEIGHT + NODE_GAP)) / 2;
    ids.forEach((id, index) =>
      place.set(id, { x: MARGIN + at * (NODE_WIDTH + COLUMN_GAP), y: top + index * (NODE_HEIGHT + NODE_GAP) }),
    );
  });
  const critical = criticalOf(graph);
  const nodes = graph.nodes.map((node) => ({ id: node.task_id, ...(place.get(node.task_id) ?? { x: 0, y: 0 }), node, critical: critical(node) }));
  return {
    nodes,
    edges,
    width: 2 * MARGIN + order.length * (NODE_WIDTH + COLUMN_GAP) - (order.length ? COLUMN_GAP : 0),
    height: 2 * MARGIN + tallest * (NODE_HEIGHT + NODE_GAP) - (tallest ? NODE_GAP : 0),
  };
}
