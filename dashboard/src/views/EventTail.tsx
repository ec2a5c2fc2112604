import * as ToggleGroup from "@radix-ui/react-toggle-group";
import { useDeferredValue, useMemo, useState } from "react";
import type { LiveEvent } from "../live/feed";
import { aggregateOf, describe } from "../live/fold";
import { useAllEvents } from "../live/LiveProvider";
import { Link } from "../ui/Link";

const KINDS = ["session", "task", "agent", "context"] as const;
const SHOWN = 400;

function EventRow({ item }: { item: LiveEvent }) {
  const { seq, event, subject } = item;
  const [open, setOpen] = useState(false);
  return (
    <li className="border-b border-rule py-1" data-event-type={event.type}>
      <div className="grid grid-cols-[5rem_6.5rem_14rem_1fr_auto] items-baseline gap-x-3">
        <span className="num text-fg-muted">#{seq}</span>
        <time className="num text-fg-muted" dateTime={event.occurred_at ?? undefined}>
          {event.occurred_at ? new Date(event.occurred_at).toLocaleTimeString() : ""}
        </time>
        <span className={event.type.endsWith("failed") || event.type.endsWith("awaiting_approval") ? "text-signal" : "text-fg"}>{event.type}</span>
        <span className="truncate text-fg-muted">
          {event.session_id && !event.type.startsWith("session") ? (
            <Link href={`/sessions/${event.session_id}`} className="mr-2 underline-offset-2 hover:underline">
              {event.session_id.slice(0, 8)}
            </Link>
          ) : null}
          {describe(event)}
        </span>
        <button
          type="button"
          aria-expanded={open}
          aria-label={`json of event #${seq}`}
          onClick={() => setOpen((o) => !o)}
          className="px-1 text-fg-muted hover:text-fg"
        >
          <span aria-hidden="true">{open ? "− " : "+ "}</span>json
        </button>
      </div>
      {open ? (
        <pre tabIndex={0} aria-label={`Event #${seq}, ${subject}`} className="mt-1 max-h-80 overflow-auto border border-rule bg-ink-sunk p-2 text-2xs">
          {JSON.stringify({ subject, ...event }, null, 2)}
        </pre>
      ) : null}
    </li>
  );
}

/** Events as rows; each opens to the whole envelope, as the stream carried it. */
export function EventRows({ events, label }: { events: LiveEvent[]; label: string }) {
  return (
    <ol aria-label={label} className="font-mono text-xs">
      {events.map((item) => (
        <EventRow key={item.seq} item={item} />
      ))}
    </ol>
  );
}

export function EventTail() {
  const { events: all, status } = useAllEvents();
  const [kinds, setKinds] = useState<string[]>([...KINDS]);
  const [text, setText] = useState("");
  const needle = useDeferredValue(text.trim().toLowerCase());
  const shown = useMemo(() => {
    const wanted = new Set(kinds);
    const out: LiveEvent[] = [];
    for (let i = all.length - 1; i >= 0 && out.length < SHOWN; i -= 1) {
      const item = all[i];
      if (!item || !wanted.has(aggregateOf(item.subject))) continue;
      if (needle && !`${item.event.type} ${describe(item.event)} ${item.subject}`.toLowerCase().includes(needle)) continue;
      out.push(item);
    }
    return out;
  }, [all, kinds, needle]);

  return (
    <div>
      <h1 className="text-3xl font-black uppercase leading-none">Event tail</h1>
      <p className="mt-1 font-mono text-xs text-fg-muted">
        Every event of the mesh, the last 300 before this view opened and every one since, newest first ({all.length} received, the last {SHOWN} matching shown).
      </p>
      <div className="mt-4 flex flex-wrap items-end gap-4" role="search" aria-label="Filter events">
        <ToggleGroup.Root type="multiple" value={kinds} onValueChange={setKinds} aria-label="Kinds of event" className="flex">
          {KINDS.map((kind) => (
            <ToggleGroup.Item
              key={kind}
              value={kind}
              className="-ml-px border border-rule-strong px-3 py-1 font-mono text-xs uppercase tracking-[0.08em] text-fg first:ml-0 data-[state=on]:border-fg data-[state=on]:bg-fg data-[state=on]:text-ink"
            >
              {kind}
            </ToggleGroup.Item>
          ))}
        </ToggleGroup.Root>
        <label className="flex min-w-[16rem] flex-col gap-1">
          <span className="label-caps">Type, name or subject contains</span>
          <input className="field" type="search" value={text} onChange={(e) => setText(e.target.value)} placeholder="task.completed" />
        </label>
      </div>
      {status === "reconnecting" ? (
        <p role="alert" className="mt-4 border-l-2 border-signal pl-3 font-mono text-sm text-signal">
          The event stream is unreachable; retrying, and resuming where it stopped.
        </p>
      ) : null}
      <div className="mt-4" aria-live="off" data-tail-feed={status}>
        {shown.length ? (
          <EventRows events={shown} label="Live events" />
        ) : (
          <p role="status" className="py-6 text-sm text-fg-muted">
            {status === "live"
              ? all.length
                ? "No event matches these filters."
                : "No event yet: nothing has happened in the mesh."
              : "Connecting to the event stream…"}
          </p>
        )}
      </div>
    </div>
  );
}
