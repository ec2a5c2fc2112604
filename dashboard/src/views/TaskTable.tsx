import * as Dialog from "@radix-ui/react-dialog";
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api } from "../api/client";
import type { Task } from "../api/types";
import { keys } from "../live/sync";
import { upsert } from "../model/merge";
import { Button } from "../ui/Button";
import { taskMeta, StatusMark } from "../ui/Status";
import { useAction } from "../ui/useAction";

function useSettle(task: Task) {
  const client = useQueryClient();
  const store = (updated: Task) =>
    client.setQueryData<Task[]>(keys.tasks(task.session_id), (list) => (list ? upsert(list, updated) : list));
  const approve = useAction(() => api.approveTask(task.id), store);
  const reject = useAction((comment: string) => api.rejectTask(task.id, comment), store);
  return { approve, reject };
}

export function Review({ task }: { task: Task }) {
  const { approve, reject } = useSettle(task);
  const [open, setOpen] = useState(false);
  const [comment, setComment] = useState("");
  const busy = approve.isPending || reject.isPending;
  return (
    <div className="flex flex-col items-end gap-1">
      <div className="flex gap-1">
        <Button tone="primary" busy={approve.isPending} disabled={busy} onClick={() => approve.mutate(undefined)} aria-label={`Approve ${task.title}`}>
          Approve
        </Button>
        <Dialog.Root open={open} onOpenChange={setOpen}>
          <Dialog.Trigger asChild>
            <Button tone="danger" disabled={busy} busy={reject.isPending} aria-label={`Reject ${task.title}`}>
              Reject
            </Button>
          </Dialog.Trigger>
          <Dialog.Portal>
            <Dialog.Overlay className="fixed inset-0 bg-ink-sunk/80" />
            <Dialog.Content className="fixed left-1/2 top-1/3 w-[min(32rem,92vw)] -translate-x-1/2 border border-fg bg-ink p-5">
              <Dialog.Title className="text-lg font-bold uppercase">Reject “{task.title}”</Dialog.Title>
              <Dialog.Description className="mt-1 text-sm text-fg-muted">
                The task goes back to work with your comment added to its prompt.
              </Dialog.Description>
              <form
                className="mt-4 flex flex-col gap-3"
                onSubmit={(event) => {
                  event.preventDefault();
                  reject.mutate(comment, { onSuccess: () => setOpen(false) });
                }}
              >
                <label className="flex flex-col gap-1">
                  <span className="label-caps">What to change</span>
                  <textarea className="field min-h-[5rem]" value={comment} onChange={(e) => setComment(e.target.value)} />
                </label>
                {reject.errorMessage ? (
                  <p role="alert" className="font-mono text-xs text-signal">
                    {reject.errorMessage}
                  </p>
                ) : null}
                <div className="flex justify-end gap-2">
                  <Dialog.Close asChild>
                    <Button type="button">Keep waiting</Button>
                  </Dialog.Close>
                  <Button type="submit" tone="danger" busy={reject.isPending}>
                    Reject
                  </Button>
                </div>
              </form>
            </Dialog.Content>
          </Dialog.Portal>
        </Dialog.Root>
      </div>
      {approve.errorMessage ? (
        <p role="alert" className="font-mono text-2xs text-signal">
          {approve.errorMessage}
        </p>
      ) : null}
    </div>
  );
}

export function TaskTable({ tasks }: { tasks: Task[] }) {
  const ordered = [...tasks].sort((a, b) => Number(b.awaiting_approval) - Number(a.awaiting_approval) || (a.parent_id ? 1 : 0) - (b.parent_id ? 1 : 0));
  return (
    <table className="w-full border-collapse text-sm">
      <caption className="sr-only">Tasks of the session</caption>
      <thead>
        <tr className="border-b border-rule-strong text-left">
          {["Task", "Status", "Agent", "Attempts", ""].map((h, i) => (
            <th key={i} scope="col" className="label-caps py-1 pr-4 font-normal">
              {h || <span className="sr-only">Review</span>}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {ordered.map((task) => (
          <tr key={task.id} className="border-b border-rule align-top" data-task-id={task.id} data-task-status={task.status}>
            <td className="py-2 pr-4">
              <div className={task.parent_id ? "" : "font-semibold"}>{task.title}</div>
              <div className="font-mono text-2xs text-fg-muted">
                {task.id.slice(0, 8)}
                {task.parent_id ? "" : " · root"}
                {task.requires_approval ? " · needs approval" : ""}
              </div>
              {task.error ? <div className="font-mono text-2xs text-signal">{task.error}</div> : null}
            </td>
            <td className="py-2 pr-4" key={task.status}>
              <span className="just-changed inline-block">
                <StatusMark meta={taskMeta(task.status, task.awaiting_approval)} label={task.awaiting_approval ? "awaiting approval" : task.status} />
              </span>
              {task.status_reason && !task.awaiting_approval ? <div className="text-2xs text-fg-muted">{task.status_reason}</div> : null}
            </td>
            <td className="py-2 pr-4 font-mono text-2xs">{task.assigned_agent_id ? task.assigned_agent_id.slice(0, 8) : "—"}</td>
            <td className="num py-2 pr-4 text-xs">
              {task.attempt_count}/{task.max_attempts}
            </td>
            <td className="py-2 text-right">{task.awaiting_approval ? <Review task={task} /> : null}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
