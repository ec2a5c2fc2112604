import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useMemo } from "react";
import { api } from "../api/client";
import type { Agent } from "../api/types";
import { keys, loadList } from "../live/sync";
import { upsert } from "../model/merge";
import { formatAge } from "../model/sessions";
import { Button } from "../ui/Button";
import { QueryState } from "../ui/QueryState";
import { agentMeta, StatusMark } from "../ui/Status";
import { useAction } from "../ui/useAction";
import { useNow } from "../ui/useNow";

const GONE = new Set(["deregistered"]);

function DrainButton({ agent }: { agent: Agent }) {
  const client = useQueryClient();
  const drain = useAction(
    () => api.drainAgent(agent.id),
    (updated: Agent) => client.setQueryData<Agent[]>(keys.agents, (list) => (list ? upsert(list, updated) : list)),
  );
  const can = agent.status === "idle" || agent.status === "busy" || agent.status === "offline";
  return (
    <div className="flex flex-col items-end gap-1">
      <Button onClick={() => drain.mutate(undefined)} busy={drain.isPending} disabled={!can} aria-label={`Drain ${agent.name}`}>
        Drain
      </Button>
      {drain.errorMessage ? (
        <p role="alert" className="max-w-[14rem] text-right font-mono text-2xs text-signal">
          {drain.errorMessage}
        </p>
      ) : null}
    </div>
  );
}

export function AgentsPanel() {
  const query = useQuery({ queryKey: keys.agents, queryFn: () => loadList(keys.agents, api.agents) });
  const now = useNow(1000);
  const agents = useMemo(
    () => (query.data ?? []).filter((a) => !GONE.has(a.status)).sort((a, b) => a.name.localeCompare(b.name)),
    [query.data],
  );
  return (
    <div>
      <h1 className="text-3xl font-black uppercase leading-none">Agents</h1>
      <p className="mt-1 font-mono text-xs text-fg-muted">
        {query.data ? `${agents.length} registered · ${agents.filter((a) => a.status === "busy").length} busy` : "\u00a0"}
      </p>
      <div className="mt-5">
        <QueryState
          what="agents"
          isPending={query.isPending}
          error={query.error}
          retry={() => void query.refetch()}
          isEmpty={agents.length === 0}
          empty={<p>No agent is registered. Start one with <code>orch agent run --name AGENT-1</code>.</p>}
        >
          <table className="w-full border-collapse text-sm">
            <caption className="sr-only">Registered agents</caption>
            <thead>
              <tr className="border-b border-rule-strong text-left">
                {["Agent", "Status", "Tier", "Load", "Heartbeat", "Current tasks", ""].map((h, i) => (
                  <th key={i} scope="col" className="label-caps py-1 pr-4 font-normal">
                    {h || <span className="sr-only">Actions</span>}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {agents.map((agent) => {
                const load = agent.load;
                const current = load?.current_tasks ?? 0;
                const ratio = agent.max_concurrent_tasks ? Math.min(current / agent.max_concurrent_tasks, 1) : 0;
                const age = formatAge(agent.last_heartbeat_at, now);
                return (
                  <tr key={agent.id} className="border-b border-rule align-top" data-agent={agent.name}>
                    <td className="py-2 pr-4">
                      <div className="font-semibold">{agent.name}</div>
                      <div className="font-mono text-2xs text-fg-muted">
                        {agent.agent_type} · {agent.executor_kind}
                        {agent.model_identifier ? ` · ${agent.model_identifier}` : ""}
                      </div>
                    </td>
                    <td className="py-2 pr-4">
                      <StatusMark meta={agentMeta(agent.status)} label={agent.status} />
                      {agent.status_reason ? <div className="text-2xs text-fg-muted">{agent.status_reason}</div> : null}
                    </td>
                    <td className="py-2 pr-4 font-mono text-xs uppercase">{agent.performance?.tier ?? "—"}
                      <div className="num text-2xs text-fg-muted normal-case">
                        {agent.performance ? `${agent.performance.tasks_completed} done · ${agent.performance.tasks_failed} failed` : ""}
                      </div>
                    </td>
                    <td className="py-2 pr-4">
                      <div className="num text-xs">
                        {current}/{agent.max_concurrent_tasks} <span className="text-fg-muted">{load?.level ?? ""}</span>
                      </div>
                      <div className="mt-1 h-1.5 w-24 bg-rule" role="meter" aria-label={`Load of ${agent.name}`} aria-valuemin={0} aria-valuemax={agent.max_concurrent_tasks || 1} aria-valuenow={current}>
                        <div className={`h-full ${ratio >= 1 ? "bg-hold" : "bg-fg"}`} style={{ width: `${ratio * 100}%` }} />
                      </div>
                    </td>
                    <td className={`num py-2 pr-4 text-xs ${agent.status === "offline" ? "text-signal" : ""}`}>{age === "—" ? "never" : `${age} ago`}</td>
                    <td className="py-2 pr-4 font-mono text-2xs">
                      {load?.current_task_ids.length ? load.current_task_ids.map((id) => <div key={id}>{id.slice(0, 8)}</div>) : <span className="text-fg-muted">none</span>}
                    </td>
                    <td className="py-2 text-right">
                      <DrainButton agent={agent} />
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </QueryState>
      </div>
    </div>
  );
}
