/** Lays large graphs out off the main thread, so the page stays responsive meanwhile. */
import type { TaskGraph } from "../api/types";
import { layoutGraph, type Layout } from "./graph";

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<{ key: string; graph: TaskGraph }>) => void) | null;
  postMessage(message: { key: string; layout: Layout }): void;
};

scope.onmessage = (event) => {
  const { key, graph } = event.data;
  scope.postMessage({ key, layout: layoutGraph(graph) });
};
