import * as Tabs from "@radix-ui/react-tabs";
import { useQuery } from "@tanstack/react-query";
import { useEffect, useMemo, useState, type ComponentProps } from "react";
import { api } from "../api/client";
import type { GraphNode, Session, Task, TaskGraph } from "../api/types";
import { useLogged, useSessionTimeline } from "../live/LiveProvider";
import type { EventLog } from "../live/log";
import { keys, loadList } from "../live/sync";
import { statusCounts } from "../model/statuses";
import { ACTIVE, formatAge, progressOf } from "../model/sessions";
import { Gauge } from "../ui/Gauge";
import { Link } from "../ui/Link";
import { Panel } from "../ui/Panel";
import { QueryState } from "../ui/QueryState";
import { sessionMeta, StatusMark, taskMeta } from "../ui/Status";
import { NotLoaded } from "../ui/NotLoaded";
import { OnDemand, useOnDemand } from "../ui/onDemand";
import { useNow } from "../ui/useNow";
import { ContextViewer } from "./ContextViewer";
import { EventRows } from "./EventTail";
import { SessionActions } from "./SessionActions";
import type GraphView from "./TaskGraph";
import { Review, TaskTable } from "./TaskTable";

const graphView = new OnDemand(() => import("./TaskGraph"));

function TaskGraphView(props: ComponentProps<typeof GraphView>) {
  const code = useOnDemand(graphView);
  if (code.status !== "loaded") return <NotLoaded what="graph view" failed={code.status === "failed"} />;
  return <code.value.default {...props} />;
}

const TAB =
  "border-b-2 border-transparent px-3 py-2 font-mono text-xs uppercase tracking-[0.1em] text-fg-muted hover:text-fg data-[state=active]:border-fg data-[state=active]:text-fg";

function tokens(session: Session): number {
  const u = session.metrics?.usage;
  return u ? u.input_tokens + u.output_tokens + u.reasoning_tokens : 0;
}

function Figures({ session, graph }: { session: Session; graph: TaskGraph | undefined }) {
  const now = useNow(1000);
  const progress = progressOf(session);
  const limits = session.limits;
  const used = tokens(session);
  const cost = session.metrics?.usage?.cost_usd ?? 0;
  const tokenBudget = limits?.token_budget ?? 0;
  const costBudget = limits?.cost_budget_usd ?? 0;
  const active = ACTIVE.has(session.status);
  const ended = session.metrics?.completed_at ?? session.status_updated_at;
  const finish = active ? graph?.expected_finish_at : ended;
  return (
    <div className="grid grid-cols-2 gap-x-6 gap-y-4 border-y border-rule py-4 md:grid-cols-3 xl:grid-cols-6">
      <Gauge label="Progress" value={progress.done} max={progress.total || null} text={progress.total ? `${progress.done} / ${progress.total} tasks` : "no tasks yet"} />
      <Gauge label="Health" value={session.health_score} max={1} text={session.health_score.toFixed(2)} alert={session.health_score < 0.5} />
      <Gauge
        label="Tokens"
        value={used}
        max={tokenBudget || null}
        text={`${used.toLocaleString()}${tokenBudget ? ` / ${tokenBudget.toLocaleString()}` : ""}`}
        alert={tokenBudget > 0 && used >= tokenBudget}
      />
      <Gauge
        label="Cost"
        value={cost}
        max={costBudget || null}
        text={`$${cost.toFixed(4)}${costBudget ? ` / $${costBudget.toFixed(2)}` : ""}`}
        alert={costBudget > 0 && cost >= costBudget}
      />
      <div>
        <div className="label-caps">{active ? "Expected finish" : "Ended"}</div>
        <div className="num text-lg leading-tight">{finish ? new Date(finish).toLocaleTimeString() : "—"}</div>
        <div className="num text-2xs text-fg-muted">
          {active && graph?.critical_path ? `critical path ${graph.critical_path.expected_hours.toFixed(1)} h ± ${graph.critical_path.sigma_hours.toFixed(1)}` : ""}
        </div>
      </div>
      <div>
        <div className="label-caps">Age · retries</div>
        <div className="num text-lg leading-tight">
          {formatAge(session.created_at, now)} · {session.metrics?.retry_count ?? 0}
        </div>
        <div className="num text-2xs text-fg-muted">limit {session.max_duration_seconds}s</div>
      </div>
    </div>
  );
}

/** The task chosen in the graph: what it is, where it stands, and its review when it waits. */
function TaskInspector({ task, node }: { task: Task | undefined; node: GraphNode | undefined }) {
  if (!node) {
    return (
      <aside aria-label="Selected task" className="border-l border-rule pl-4 text-sm text-fg-muted">
        Choose a task in the graph (click it, or Tab to it and press Enter) to see it here.
      </aside>
    );
  }
  const rows: [string, string][] = [
    ["Id", node.task_id],
    ["Agent", task?.assigned_agent_id || node.assigned_agent_id || "—"],
    ["Attempts", task ? `${task.attempt_count} of ${task.max_attempts}` : "—"],
    ["Expected", `${node.expected_hours.toFixed(2)} h ± ${node.sigma_hours.toFixed(2)}`],
    ["Slack", `${node.slack_hours.toFixed(2)} h${node.on_critical_path ? " · critical path" : ""}`],
    ["Priority", node.priority],
  ];
  return (
    <aside aria-label="Selected task" className="border-l border-rule pl-4">
      <h3 className="text-base font-bold">{node.title}</h3>
      <div className="mt-1">
        <StatusMark meta={taskMeta(node.status, task?.awaiting_approval)} label={task?.awaiting_approval ? "awaiting approval" : node.status} />
      </div>
      {task?.status_reason ? <p className="mt-1 text-sm text-fg-muted">{task.status_reason}</p> : null}
      {task?.error ? <p className="mt-1 font-mono text-xs text-signal">{task.error}</p> : null}
      <dl className="mt-3 grid grid-cols-[6rem_1fr] gap-y-1 font-mono text-xs">
        {rows.map(([k, v]) => (
          <div key={k} className="contents">
            <dt className="text-fg-muted">{k}</dt>
            <dd className="break-all">{v}</dd>
          </div>
        ))}
      </dl>
      {task?.description ? <p className="mt-3 max-h-40 overflow-auto whitespace-pre-wrap text-sm">{task.description}</p> : null}
      {task?.awaiting_approval ? (
        <div className="mt-3">
          <Review task={task} />
        </div>
      ) : null}
    </aside>
  );
}

function Timeline({ log }: { log: EventLog }) {
  const { events, status } = useLogged(log);
  const newest = useMemo(() => events.slice(-500).reverse(), [events]);
  const down =
    status === "reconnecting" ? (
      <p role="alert" className="mb-2 border-l-2 border-signal pl-3 font-mono text-sm text-signal">
        The event stream is unreachable; retrying, and resuming where it stopped.
      </p>
    ) : null;
  if (!events.length) {
    return (
      <>
        {down}
        <p role="status" className="py-4 text-sm text-fg-muted">
          {status === "live" ? "No event for this session yet." : "Reading the session's events…"}
        </p>
      </>
    );
  }
  return (
    <>
      {down}
      <EventRows events={newest} label="Session events, newest first" />
    </>
  );
}

function Checkpoints({ sessionId }: { sessionId: string }) {
  const query = useQuery({ queryKey: keys.checkpoints(sessionId), queryFn: () => api.checkpoints(sessionId) });
  const list = [...(query.data ?? [])].reverse();
  return (
    <QueryState what="checkpoints" isPending={query.isPending} error={query.error} retry={() => void query.refetch()} isEmpty={list.length === 0} empty={<p>No checkpoint yet.</p>}>
      <ol className="font-mono text-xs" aria-label="Checkpoints, newest first">
        {list.map((cp) => (
          <li key={cp.sequence} className="grid grid-cols-[4rem_7rem_1fr] gap-3 border-b border-rule py-1">
            <span className="num">#{cp.sequence}</span>
            <span className="text-fg-muted">{cp.created_at ? new Date(cp.created_at).toLocaleTimeString() : ""}</span>
            <span className="truncate">{JSON.stringify(cp.data)}</span>
          </li>
        ))}
      </ol>
    </QueryState>
  );
}

/** The ids of the tasks awaiting approval: the same set while they stay the same, so the graph
 * does not draw again for every batch of task events. */
function useAwaiting(tasks: Task[] | undefined): ReadonlySet<string> {
  const ids = (tasks ?? []).filter((t) => t.awaiting_approval).map((t) => t.id);
  const key = ids.join();
  // `key` stands for `ids`.
  return useMemo(() => new Set(ids), [key]);
}

export default function SessionDetail({ id }: { id: string }) {
  const session = useQuery({ queryKey: keys.session(id), queryFn: () => api.session(id) });
  const graph = useQuery({ queryKey: keys.graph(id), queryFn: () => api.graph(id) });
  // The graph view's code loads while the graph is fetched, not after it.
  useEffect(graphView.start, []);
  // The graph first: the task list (pages of 500) and the session's replayed events would share
  // the gateway with it, and a large graph would wait for them.
  const graphFirst = !graph.isPending;
  // The session's own socket, open whatever the tab: its events keep tasks, graph and contexts
  // current and make the timeline (replayed from the start, so opening later misses nothing).
  const timeline = useSessionTimeline(id, graphFirst);
  const tasks = useQuery({ queryKey: keys.tasks(id), queryFn: () => loadList(keys.tasks(id), () => api.tasks(id)), enabled: graphFirst });
  const awaiting = useAwaiting(tasks.data);
  const counts = graph.data ? statusCounts(graph.data) : {};
  const [selected, setSelected] = useState<string | null>(null);
  const s = session.data;
  return (
    <QueryState what="the session" isPending={session.isPending} error={session.error} retry={() => void session.refetch()} isEmpty={false} empty={null}>
      {s ? (
        <div className="flex flex-col gap-5">
          <div className="flex flex-wrap items-start justify-between gap-4">
            <div className="min-w-0">
              <Link href="/" className="label-caps hover:text-fg">
                ← Sessions
              </Link>
              <h1 className="mt-1 text-3xl font-black uppercase leading-none">{s.title}</h1>
              <div className="mt-2 flex flex-wrap items-center gap-x-4 gap-y-1">
                <span data-testid="session-status" data-status={s.status}>
                  <StatusMark meta={sessionMeta(s.status)} label={s.status} />
                </span>
                <code className="text-2xs text-fg-muted">{s.id}</code>
                <span className="font-mono text-2xs text-fg-muted">
                  {s.session_type} · {s.priority} · v{s.version}
                </span>
              </div>
              {s.status_reason && s.status_reason !== s.error ? <p className="mt-1 text-sm text-fg-muted">{s.status_reason}</p> : null}
              {s.error ? <p className="mt-1 font-mono text-sm text-signal">{s.error}</p> : null}
            </div>
            <SessionActions session={s} />
          </div>
          <Figures session={s} graph={graph.data} />
          {awaiting.size ? (
            <p role="status" className="border-l-2 border-signal pl-3 font-mono text-sm text-signal">
              ▲ {awaiting.size} task{awaiting.size > 1 ? "s" : ""} awaiting approval — see Tasks.
            </p>
          ) : null}
          <Tabs.Root defaultValue="graph">
            <Tabs.List aria-label="Session views" className="flex flex-wrap border-b border-rule-strong">
              <Tabs.Trigger value="graph" className={TAB}>Task graph</Tabs.Trigger>
              <Tabs.Trigger value="tasks" className={TAB}>Tasks {tasks.data ? `(${tasks.data.length})` : ""}</Tabs.Trigger>
              <Tabs.Trigger value="timeline" className={TAB}>Timeline</Tabs.Trigger>
              <Tabs.Trigger value="checkpoints" className={TAB}>Checkpoints</Tabs.Trigger>
              <Tabs.Trigger value="context" className={TAB}>Context</Tabs.Trigger>
            </Tabs.List>
            <Tabs.Content value="graph" className="pt-4">
              <Panel
                title="Task graph"
                aside={
                  <p className="font-mono text-2xs text-fg-muted">
                    {Object.entries(counts).map(([k, v]) => `${v} ${k.replace("_", " ")}`).join(" · ")}
                    {graph.data?.critical_path?.task_ids.length ? " · thick outline = critical path" : ""}
                  </p>
                }
              >
                <QueryState
                  what="the task graph"
                  isPending={graph.isPending}
                  error={graph.error}
                  retry={() => void graph.refetch()}
                  isEmpty={!graph.data?.nodes.length}
                  empty={<p>No tasks yet: the graph appears once the session starts and is decomposed.</p>}
                >
                  {graph.data ? (
                    <div className="grid gap-4 xl:grid-cols-[1fr_22rem]">
                      <TaskGraphView graph={graph.data} awaiting={awaiting} onSelect={setSelected} />
                      <TaskInspector task={(tasks.data ?? []).find((t) => t.id === selected)} node={graph.data.nodes.find((n) => n.task_id === selected)} />
                    </div>
                  ) : null}
                </QueryState>
              </Panel>
            </Tabs.Content>
            <Tabs.Content value="tasks" className="pt-4">
              <QueryState
                what="tasks"
                isPending={tasks.isPending}
                error={tasks.error}
                retry={() => void tasks.refetch()}
                isEmpty={!tasks.data?.length}
                empty={<p>No tasks yet.</p>}
              >
                <TaskTable tasks={tasks.data ?? []} />
              </QueryState>
            </Tabs.Content>
            <Tabs.Content value="timeline" className="pt-4">
              <Timeline log={timeline} />
            </Tabs.Content>
            <Tabs.Content value="checkpoints" className="pt-4">
              <Checkpoints sessionId={id} />
            </Tabs.Content>
            <Tabs.Content value="context" className="pt-4">
              <ContextViewer sessionId={id} />
            </Tabs.Content>
          </Tabs.Root>
        </div>
      ) : null}
    </QueryState>
  );
}
