/** The task graph (React Flow, loaded on demand): layers by dependency, live status, critical path. */
import "@xyflow/react/dist/style.css";
import { Background, Controls, Handle, MiniMap, Position, ReactFlow, type Node, type NodeChange, type NodeProps } from "@xyflow/react";
import { memo, useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, type RefObject } from "react";
import type { TaskGraph as Graph } from "../api/types";
import { flowEdges, flowNodes, type TaskData, type TaskNode } from "../model/flow";
import { LARGE_GRAPH, layoutGraph, NODE_HEIGHT, NODE_WIDTH, type Layout } from "../model/graph";
import { TONE_BORDER, TONE_TEXT, taskMeta } from "../ui/Status";

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

function shapeKey(graph: Graph): string {
  return [
    graph.nodes.map((n) => n.task_id).join(),
    graph.edges.map((e) => e.predecessor_id + e.successor_id).join(),
    graph.critical_path?.task_ids.join() ?? "",
  ].join("|");
}

function useLayout(graph: Graph): Layout {
  const key = useMemo(() => shapeKey(graph), [graph]);
  if (lastLayout?.key !== key) lastLayout = { key, layout: layoutGraph(graph) };
  return lastLayout.layout;
}

/**
 * The element's inner size, measured before the first paint. Given to React Flow, its first
 * render draws the nodes in view, where it would otherwise draw none until it measured itself.
 */
function useSize(ref: RefObject<HTMLElement | null>): { width: number; height: number } | null {
  const [size, setSize] = useState<{ width: number; height: number } | null>(null);
  useLayoutEffect(() => {
    const box = ref.current;
    if (box) setSize({ width: box.clientWidth, height: box.clientHeight });
  }, [ref]);
  return size;
}

/** False until a frame has been painted since `ready` turned true. */
function useAfterPaint(ready: boolean): boolean {
  const [painted, setPainted] = useState(false);
  useEffect(() => {
    if (!ready || painted) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    // A frame's callbacks run before its paint; a task queued from there runs after it.
    const frame = requestAnimationFrame(() => (timer = setTimeout(() => setPainted(true))));
    return () => {
      cancelAnimationFrame(frame);
      clearTimeout(timer);
    };
  }, [ready, painted]);
  return painted;
}

const DEFAULT_VIEWPORT = { x: 8, y: 8, zoom: 0.75 };
const PRO_OPTIONS = { hideAttribution: true };

function miniMapColour(node: Node): string {
  const { task, awaiting } = node.data as TaskData;
  return TONE_HEX[taskMeta(task.status, awaiting).tone] ?? "#4a5154";
}

/** Drawn again only when the graph, the tasks awaiting approval or `onSelect` change: not for
 * every event the session's page receives. */
export default memo(function TaskGraph({
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
  const previous = useRef<TaskNode[]>([]);
  const nodes = useMemo(() => (previous.current = flowNodes(layout, byId, awaiting, previous.current)), [layout, byId, awaiting]);
  const edges = useMemo(() => flowEdges(layout), [layout]);
  const onNodeClick = useCallback((_: unknown, node: Node) => onSelect(node.id), [onSelect]);
  const onNodesChange = useCallback(
    (changes: NodeChange<TaskNode>[]) => {
      // The nodes are ours (controlled): a selection, by click or Enter, arrives as a change.
      for (const change of changes) if (change.type === "select" && change.selected) onSelect(change.id);
    },
    [onSelect],
  );
  // A large graph opens at its start, readable, drawing only the nodes in view; a small one fits.
  const large = nodes.length > LARGE_GRAPH;
  const frame = useRef<HTMLDivElement>(null);
  const size = useSize(frame);
  // The minimap draws every node (a thousand, each following the store) and can wait a frame: it
  // comes after the first paint of the nodes in view.
  const mapShown = useAfterPaint(size !== null);
  return (
    <div ref={frame} className="h-[62vh] min-h-[24rem] border border-rule-strong" data-testid="task-graph">
      {size ? (
        <ReactFlow
          // A small graph fits itself again when tasks appear (a new view, so it fits anew).
          key={large ? "large" : nodes.length}
          width={size.width}
          height={size.height}
          nodes={nodes}
          edges={edges}
          nodeTypes={NODE_TYPES}
          fitView={!large}
          defaultViewport={DEFAULT_VIEWPORT}
          minZoom={0.05}
          onlyRenderVisibleElements
          nodesDraggable={false}
          nodesConnectable={false}
          onNodeClick={onNodeClick}
          onNodesChange={onNodesChange}
          proOptions={PRO_OPTIONS}
          colorMode="dark"
          aria-label="Task graph"
        >
          <Background gap={24} size={1} color="#2c3133" />
          <Controls showInteractive={false} />
          {mapShown ? <MiniMap pannable zoomable nodeColor={miniMapColour} maskColor="rgba(7,8,8,0.7)" /> : null}
        </ReactFlow>
      ) : null}
    </div>
  );
});
