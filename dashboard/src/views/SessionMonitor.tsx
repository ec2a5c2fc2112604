import * as ToggleGroup from "@radix-ui/react-toggle-group";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useVirtualizer } from "@tanstack/react-virtual";
import { useDeferredValue, useMemo, useRef, useState, type CSSProperties } from "react";
import { api } from "../api/client";
import { SESSION_TYPES, type Session } from "../api/types";
import { keys, loadList } from "../live/sync";
import { countByGroup, formatAge, progressOf, visibleSessions, type Sort, type SortKey, type StatusGroup } from "../model/sessions";
import { Link } from "../ui/Link";
import { QueryState } from "../ui/QueryState";
import { sessionMeta, StatusMark } from "../ui/Status";
import { useNow } from "../ui/useNow";

const GROUPS: { value: StatusGroup; label: string }[] = [
  { value: "all", label: "All" },
  { value: "active", label: "Active" },
  { value: "attention", label: "Attention" },
  { value: "ended", label: "Ended" },
];

const ROW = 40;
const HEADERS: { name: string; key: SortKey | null }[] = [
  { name: "Title", key: "title" },
  { name: "Status", key: "status" },
  { name: "Progress", key: "progress" },
  { name: "Health", key: "health" },
  { name: "Age", key: "age" },
  { name: "Type", key: null },
];
const COLUMNS = "grid grid-cols-[minmax(14rem,2.4fr)_10rem_minmax(9rem,1fr)_5.5rem_4.5rem_7rem] items-center gap-x-4";

function Row({ session, now, index, style }: { session: Session; now: number; index: number; style: CSSProperties }) {
  const progress = progressOf(session);
  const health = session.health_score;
  return (
    <div role="row" aria-rowindex={index + 2} style={style} className={`${COLUMNS} border-b border-rule px-2 hover:bg-ink-raised`} data-session-id={session.id}>
      <div role="cell" className="min-w-0 truncate">
        <Link href={`/sessions/${session.id}`} className="font-semibold underline-offset-4 hover:underline">
          {session.title}
        </Link>
        <span className="ml-2 font-mono text-2xs text-fg-muted">{session.id.slice(0, 8)}</span>
      </div>
      <div role="cell" key={session.status} className="just-changed" data-status={session.status}>
        <StatusMark meta={sessionMeta(session.status)} label={session.status} />
      </div>
      <div role="cell" className="flex items-center gap-2">
        <div className="h-1.5 flex-1 bg-rule" aria-hidden="true">
          {progress.ratio !== null ? <div className="h-full bg-fg" style={{ width: `${progress.ratio * 100}%` }} /> : null}
        </div>
        <span className="num w-14 text-right text-xs">
          {progress.total ? `${progress.done}/${progress.total}` : "—"}
        </span>
      </div>
      <div role="cell" className={`num text-right text-sm ${health < 0.5 ? "text-signal" : ""}`}>
        {health.toFixed(2)}
      </div>
      <div role="cell" className="num text-right text-sm">
        {formatAge(session.created_at, now)}
      </div>
      <div role="cell" className="truncate font-mono text-xs text-fg-muted">
        {session.session_type}
      </div>
    </div>
  );
}

export function SessionMonitor() {
  const client = useQueryClient();
  // Thousands of sessions come in pages: the first is shown while the others load.
  const query = useQuery({
    queryKey: keys.sessions,
    queryFn: () => loadList(keys.sessions, () => api.sessions((partial) => client.setQueryData(keys.sessions, partial))),
  });
  const [group, setGroup] = useState<StatusGroup>("all");
  const [text, setText] = useState("");
  const [type, setType] = useState("");
  const [sort, setSort] = useState<Sort>({ key: "age", ascending: true });
  const deferredText = useDeferredValue(text);
  const now = useNow(5000);
  const sessions = query.data;
  const rows = useMemo(
    () => (sessions ? visibleSessions(sessions, { group, text: deferredText, type }, sort) : []),
    [sessions, group, deferredText, type, sort],
  );
  const counts = useMemo(() => countByGroup(sessions ?? []), [sessions]);
  const scroller = useRef<HTMLDivElement>(null);
  const virtual = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => ROW,
    overscan: 12,
    initialRect: { width: 1000, height: 800 },
  });

  return (
    <div className="flex h-full flex-col gap-4">
      <div className="flex flex-wrap items-end justify-between gap-4">
        <div>
          <h1 className="text-3xl font-black uppercase leading-none">Sessions</h1>
          <p className="mt-1 font-mono text-xs text-fg-muted">
            {sessions ? `${counts.all} sessions · ${counts.active} active · ${counts.attention} need attention` : "\u00a0"}
            {query.isFetching && sessions ? " · loading more…" : ""}
          </p>
        </div>
        <Link href="/sessions/new" className="border border-fg bg-fg px-3 py-1.5 font-mono text-xs uppercase tracking-[0.1em] text-ink hover:bg-transparent hover:text-fg">
          + New session
        </Link>
      </div>
      <div className="flex flex-wrap items-end gap-4" role="search" aria-label="Filter sessions">
        <ToggleGroup.Root
          type="single"
          value={group}
          onValueChange={(value) => value && setGroup(value as StatusGroup)}
          aria-label="Status"
          className="flex"
        >
          {GROUPS.map((g) => (
            <ToggleGroup.Item
              key={g.value}
              value={g.value}
              className="border border-rule-strong px-3 py-1 font-mono text-xs uppercase tracking-[0.08em] text-fg -ml-px first:ml-0 data-[state=on]:border-fg data-[state=on]:bg-fg data-[state=on]:text-ink"
            >
              {g.label} <span className="num">{counts[g.value]}</span>
            </ToggleGroup.Item>
          ))}
        </ToggleGroup.Root>
        <label className="flex flex-col gap-1">
          <span className="label-caps">Type</span>
          <select className="field" value={type} onChange={(e) => setType(e.target.value)}>
            <option value="">every type</option>
            {SESSION_TYPES.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <label className="flex min-w-[16rem] flex-col gap-1">
          <span className="label-caps">Title, id, tag or status</span>
          <input className="field" type="search" value={text} onChange={(e) => setText(e.target.value)} placeholder="IND-42, billing, 3f2a…" />
        </label>
      </div>
      <QueryState
        what="sessions"
        isPending={query.isPending}
        error={query.error}
        retry={() => void query.refetch()}
        isEmpty={rows.length === 0}
        empty={
          sessions?.length ? (
            <p>No session matches these filters.</p>
          ) : (
            <p>
              No sessions yet. <Link href="/sessions/new" className="underline">Create the first one</Link>.
            </p>
          )
        }
      >
        <div role="table" aria-label="Sessions" aria-rowcount={rows.length + 1} className="flex min-h-0 flex-1 flex-col">
          <div role="rowgroup">
            <div role="row" aria-rowindex={1} className={`${COLUMNS} border-b border-rule-strong px-2 pb-1`}>
              {HEADERS.map(({ name, key }, i) => {
                const active = key !== null && sort.key === key;
                return (
                  <div
                    key={name}
                    role="columnheader"
                    aria-sort={active ? (sort.ascending ? "ascending" : "descending") : undefined}
                    className={`label-caps ${i === 3 || i === 4 ? "text-right" : ""}`}
                  >
                    {key === null ? (
                      name
                    ) : (
                      <button
                        type="button"
                        className={`uppercase tracking-[0.12em] hover:text-fg ${active ? "text-fg" : ""}`}
                        onClick={() => setSort((old) => ({ key, ascending: old.key === key ? !old.ascending : true }))}
                      >
                        {name}
                        <span aria-hidden="true">{active ? (sort.ascending ? " ↑" : " ↓") : ""}</span>
                      </button>
                    )}
                  </div>
                );
              })}
            </div>
          </div>
          <div ref={scroller} className="relative h-[calc(100vh-16rem)] min-h-[18rem] overflow-auto" data-testid="session-rows">
            <div role="rowgroup" style={{ height: virtual.getTotalSize(), position: "relative" }}>
              {virtual.getVirtualItems().map((item) => {
                const session = rows[item.index];
                if (!session) return null;
                return (
                  <Row
                    key={session.id}
                    session={session}
                    now={now}
                    index={item.index}
                    style={{ position: "absolute", top: 0, left: 0, right: 0, height: item.size, transform: `translateY(${item.start}px)` }}
                  />
                );
              })}
            </div>
          </div>
        </div>
      </QueryState>
    </div>
  );
}
