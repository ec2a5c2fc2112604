import { useQuery } from "@tanstack/react-query";
import { useMemo, useState } from "react";
import { api } from "../api/client";
import type { Context, Json } from "../api/types";
import { keys } from "../live/sync";
import { dataAtVersion, diffData, versionChoices, versionsOf } from "../model/context";
import { QueryState } from "../ui/QueryState";

const show = (value: Json | undefined) => JSON.stringify(value);

function ContextVersions({ summary }: { summary: Context }) {
  // Lists carry no data: the document itself, and its history.
  const full = useQuery({ queryKey: keys.context(summary.id), queryFn: () => api.context(summary.id) });
  const history = useQuery({ queryKey: keys.history(summary.id), queryFn: () => api.history(summary.id) });
  const context = full.data ?? summary;
  const versions = useMemo(() => versionsOf(history.data ?? [], context.version), [history.data, context.version]);
  // Unchosen: the last change, i.e. the version before the current one against the current one.
  const [fromChoice, setFrom] = useState<number | null>(null);
  const [toChoice, setTo] = useState<number | null>(null);
  const data = useMemo(() => context.data ?? {}, [context.data]);
  const options = useMemo(() => versionChoices(history.data ?? [], context.version), [history.data, context.version]);
  const to = toChoice ?? context.version;
  const from = fromChoice ?? options[options.length - 2] ?? to;
  const before = useMemo(() => dataAtVersion(data, context.version, history.data ?? [], from), [data, context.version, history.data, from]);
  const after = useMemo(() => dataAtVersion(data, context.version, history.data ?? [], to), [data, context.version, history.data, to]);
  const diff = useMemo(() => diffData(before, after), [before, after]);
  return (
    <QueryState
      what="the context"
      isPending={history.isPending || full.isPending}
      error={history.error ?? full.error}
      retry={() => void Promise.all([history.refetch(), full.refetch()])}
      isEmpty={false}
      empty={null}
    >
      <div className="grid gap-4 lg:grid-cols-2">
        <div>
          <div className="label-caps mb-1">Version {to} · {context.scope}{context.name ? ` · ${context.name}` : ""}</div>
          <pre className="max-h-[50vh] overflow-auto border border-rule bg-ink-sunk p-3 text-xs" tabIndex={0} aria-label={`Context at version ${to}`}>
            {JSON.stringify(after, null, 2)}
          </pre>
          <ol className="mt-3 font-mono text-2xs text-fg-muted" aria-label="Versions">
            {versions.map((v) => (
              <li key={v.version}>
                v{v.version} {v.at ? new Date(v.at).toLocaleTimeString() : ""} {v.changedBy} — {v.paths.join(", ") || "current"}
              </li>
            ))}
          </ol>
        </div>
        <div>
          <div className="flex flex-wrap items-end gap-3">
            <label className="flex flex-col gap-1">
              <span className="label-caps">From version</span>
              <select className="field" value={from} onChange={(e) => setFrom(Number(e.target.value))}>
                {options.map((v) => (
                  <option key={v} value={v}>
                    v{v}
                  </option>
                ))}
              </select>
            </label>
            <label className="flex flex-col gap-1">
              <span className="label-caps">To version</span>
              <select className="field" value={to} onChange={(e) => setTo(Number(e.target.value))}>
                {options.map((v) => (
                  <option key={v} value={v}>
                    v{v}
                  </option>
                ))}
              </select>
            </label>
          </div>
          <h3 className="label-caps mt-4">Diff v{from} → v{to}</h3>
          {diff.length ? (
            <ul className="mt-1 font-mono text-xs" aria-label={`Changes from version ${from} to ${to}`}>
              {diff.map((line) => (
                <li key={line.path} className="grid grid-cols-[1.5rem_1fr] border-b border-rule py-1">
                  <span aria-hidden="true" className={line.kind === "removed" ? "text-signal" : line.kind === "added" ? "text-done" : "text-hold"}>
                    {line.kind === "added" ? "+" : line.kind === "removed" ? "−" : "~"}
                  </span>
                  <span>
                    <span className="sr-only">{line.kind} </span>
                    <span className="font-semibold">{line.path}</span>{" "}
                    {line.kind === "changed" ? (
                      <>
                        <del className="text-fg-muted">{show(line.before)}</del> → <ins className="no-underline">{show(line.after)}</ins>
                      </>
                    ) : (
                      show(line.kind === "added" ? line.after : line.before)
                    )}
                  </span>
                </li>
              ))}
            </ul>
          ) : (
            <p className="mt-1 text-sm text-fg-muted">No difference between these versions.</p>
          )}
        </div>
      </div>
    </QueryState>
  );
}

export function ContextViewer({ sessionId }: { sessionId: string }) {
  const query = useQuery({ queryKey: keys.contexts(sessionId), queryFn: () => api.contexts(sessionId) });
  const [chosen, setChosen] = useState<string | null>(null);
  const contexts = query.data ?? [];
  const context = contexts.find((c) => c.id === chosen) ?? contexts[0];
  return (
    <QueryState
      what="contexts"
      isPending={query.isPending}
      error={query.error}
      retry={() => void query.refetch()}
      isEmpty={contexts.length === 0}
      empty={<p>This session has no context yet: workers and the API write one as the session runs.</p>}
    >
      {contexts.length > 1 ? (
        <label className="mb-3 flex max-w-sm flex-col gap-1">
          <span className="label-caps">Context</span>
          <select className="field" value={context?.id} onChange={(e) => setChosen(e.target.value)}>
            {contexts.map((c) => (
              <option key={c.id} value={c.id}>
                {c.name || "default"} · {c.scope} · v{c.version}
              </option>
            ))}
          </select>
        </label>
      ) : null}
      {context ? <ContextVersions key={context.id} summary={context} /> : null}
    </QueryState>
  );
}
