/** The task graph (React Flow, loaded on demand): layers by dependency, live status, critical path. */
import "@xyflow/react/dist/style.css";
import { Background, Controls, Handle, MiniMap, Position, ReactFlow, type Edge, type Node, type NodeProps } from "@xyflow/react";
import { memo, useEffect, useMemo, useState } from "react";
import type { GraphNode, TaskGraph as Graph } from "../api/types";
import { layoutGraph, NODE_HEIGHT, NODE_WIDTH, type Layout } from "../model/graph";
import { TONE_BORDER, TONE_TEXT, taskMeta } from "../ui/Status";

type TaskData = { task: GraphNode; critical: boolean; awaiting: boolean };
type TaskNode = Node<TaskData, "task">;

const TONE_HEX: Record<string, string> = {
  live: "#7fd0ff",
  done: "#8fdc9f",
  hold: "#e3d27a",
  signal: "#ff7a2e",
  muted: "#4a5154",
};

const TaskBox = memo(function TaskBox({ data }: NodeProps<TaskNode>) {
  const { task, critical, awaiting } = data;
  const meta = taskMeta(task.status, awaiting);
  return (
    <div
      data-task-id={task.task_id}
      data-task-status={task.status}
      data-critical={critical || undefined}
      key={task.status}
      className={`just-changed flex flex-col justify-between border bg-ink px-2 py-1.5 ${TONE_BORDER[meta.tone]} ${critical ? "border-[3px] outline outline-1 outline-offset-2 outline-fg" : ""}`}
      style={{ width: NODE_WIDTH, height: NODE_HEIGHT }}
    >
      <Handle type="target" position={Position.Left} isConnectable={false} className="!border-0 !bg-rule-strong" />
      <div className="truncate text-xs font-semibold text-fg" title={task.title}>
        {task.title}
      </div>
      <div className="flex items-center justify-between gap-2 font-mono text-2xs uppercase">
        <span className={TONE_TEXT[meta.tone]}>
          <span aria-hidden="true">{meta.glyph} </span>
          {awaiting ? "approval" : task.status.replace("_", " ")}
        </span>
        <span className="text-fg-muted">
          {critical ? <span className="mr-1 text-fg">CP</span> : null}
          {task.expected_hours.toFixed(1)}h
        </span>
      </div>
      <Handle type="source" position={Position.Right} isConnectable={false} className="!border-0 !bg-rule-strong" />
    </div>
  );
});

const NODE_TYPES = { task: TaskBox };

// The layout depends only on the graph's shape and critical path: status changes, reloads and
// remounts of an unchanged graph reuse the last one.
let lastLayout: { key: string; layout: Layout } | null = null;
let worker: Worker | null = null;

function shapeKey(graph: Graph): string {
  return [
    graph.nodes.map((n) => n.task_id).join(),
    graph.edges.map((e) => e.predecessor_id + e.successor_id).join(),
    graph.critical_path?.task_ids.join() ?? "",
  ].join("|");
}

/** The graph's layout: at once for a small graph; a large one is laid out in a worker (a
 * second or two for a thousand tasks), and the page stays responsive meanwhile. */
function useLayout(graph: Graph): Layout | null {
  const key = useMemo(() => shapeKey(graph), [graph]);
  const small = graph.nodes.length <= LARGE_GRAPH;
  if (small && lastLayout?.key !== key) lastLayout = { key, layout: layoutGraph(graph) };
  const [layout, setLayout] = useState<Layout | null>(lastLayout?.key === key ? lastLayout.layout : null);
  useEffect(() => {
    if (lastLayout?.key === key) {
      setLayout(lastLayout.layout);
      return;
    }
    worker ??= new Worker(new URL("../model/layout.worker.ts", import.meta.url), { type: "module" });
    const current = worker;
    const done = (event: MessageEvent<{ key: string; layout: Layout }>) => {
      if (event.data.key !== key) return;
      lastLayout = event.data;
      setLayout(event.data.layout);
    };
    // A worker that cannot start or run: lay the graph out here after all.
    const failed = () => {
      lastLayout = { key, layout: layoutGraph(graph) };
      setLayout(lastLayout.layout);
    };
    current.addEventListener("message", done);
    current.addEventListener("error", failed);
    current.postMessage({ key, graph });
    return () => {
      current.removeEventListener("message", done);
      current.removeEventListener("error", failed);
    };
    // The graph object changes with every status; only its shape (the key) calls for a layout.
  }, [key]);
  // While a new shape is laid out, the previous layout stays on screen.
  return lastLayout?.key === key ? lastLayout.layout : layout;
}

const LARGE_GRAPH = 150;

export default function TaskGraph({
  graph,
  awaiting,
  onSelect,
}: {
  graph: Graph;
  awaiting: ReadonlySet<string>;
  /** A node chosen by click, or by Enter on a focused node; null when none is. */
  onSelect: (taskId: string | null) => void;
}) {
  const layout = useLayout(graph);
  const byId = useMemo(() => new Map(graph.nodes.map((n) => [n.task_id, n])), [graph]);
  const nodes: TaskNode[] = useMemo(
    () =>
      (layout?.nodes ?? []).map((placed) => {
        const task = byId.get(placed.id) ?? placed.node;
        return {
          id: placed.id,
          type: "task",
          position: { x: placed.x, y: placed.y },
          width: NODE_WIDTH,
          height: NODE_HEIGHT,
          data: { task, critical: placed.critical, awaiting: awaiting.has(placed.id) },
          draggable: false,
          connectable: false,
          ariaLabel: `${task.title}: ${awaiting.has(placed.id) ? "awaiting approval" : task.status}${placed.critical ? ", on the critical path" : ""}`,
        };
      }),
    [layout, byId, awaiting],
  );
  const edges: Edge[] = useMemo(
    () =>
      (layout?.edges ?? []).map((edge) => ({
        id: edge.id,
        source: edge.source,
        target: edge.target,
        focusable: false,
        style: edge.critical
          ? { stroke: "#eef0ea", strokeWidth: 3 }
          : edge.kind === "parent"
            ? { stroke: "#4a5154", strokeWidth: 1, strokeDasharray: "3 4" }
            : { stroke: "#8d958f", strokeWidth: 1.25 },
      })),
    [layout],
  );
  // A large graph opens at its start, readable, drawing only the nodes in view; a small one fits.
  const large = nodes.length > LARGE_GRAPH;
  if (!layout) {
    return (
      <p role="status" className="h-[62vh] min-h-[24rem] border border-rule-strong p-4 font-mono text-sm text-fg-muted" data-testid="task-graph">
        Laying out {graph.nodes.length.toLocaleString()} tasks…
      </p>
    );
  }
  return (
    <div className="h-[62vh] min-h-[24rem] border border-rule-strong" data-testid="task-graph">
      <ReactFlow
        // A small graph fits itself again when tasks appear (a new view, so it fits anew).
        key={large ? "large" : nodes.length}
        nodes={nodes}
        edges={edges}
        nodeTypes={NODE_TYPES}
        fitView={!large}
        defaultViewport={{ x: 8, y: 8, zoom: 0.75 }}
        minZoom={0.05}
        onlyRenderVisibleElements
        nodesDraggable={false}
        nodesConnectable={false}
        onNodeClick={(_, node) => onSelect(node.id)}
        onNodesChange={(changes) => {
          // The nodes are ours (controlled): a selection, by click or Enter, arrives as a change.
          for (const change of changes) if (change.type === "select" && change.selected) onSelect(change.id);
        }}
        proOptions={{ hideAttribution: true }}
        colorMode="dark"
        aria-label="Task graph"
      >
        <Background gap={24} size={1} color="#2c3133" />
        <Controls showInteractive={false} />
        <MiniMap pannable zoomable nodeColor={(n) => TONE_HEX[taskMeta((n.data as TaskData).task.status, (n.data as TaskData).awaiting).tone] ?? "#4a5154"} maskColor="rgba(7,8,8,0.7)" />
      </ReactFlow>
    </div>
  );
}
