import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, SESSION_ACTIONS, type SessionAction } from "../api/client";
import type { Session } from "../api/types";
import { keys } from "../live/sync";
import { upsert } from "../model/merge";
import { allowedActions } from "../model/sessions";
import { Button } from "../ui/Button";
import { errorText } from "../ui/QueryState";

const DANGER: ReadonlySet<SessionAction> = new Set(["stop", "cancel"]);

/** Start, pause, resume, stop, cancel, retry: each disabled while its own request runs. */
export function SessionActions({ session }: { session: Session }) {
  const client = useQueryClient();
  const [running, setRunning] = useState<SessionAction | null>(null);
  const [error, setError] = useState<string | null>(null);
  const allowed = new Set(allowedActions(session.status));
  const act = async (action: SessionAction) => {
    setRunning(action);
    setError(null);
    try {
      const updated = await api.sessionAction(session.id, action);
      client.setQueryData(keys.session(session.id), updated);
      client.setQueryData<Session[]>(keys.sessions, (list) => (list ? upsert(list, updated) : list));
    } catch (failure) {
      setError(`${action} refused: ${errorText(failure)}`);
    } finally {
      setRunning(null);
    }
  };
  return (
    <div className="flex flex-col items-end gap-2">
      <div role="group" aria-label="Session actions" className="flex flex-wrap justify-end gap-1">
        {SESSION_ACTIONS.map((action) => (
          <Button
            key={action}
            tone={DANGER.has(action) ? "danger" : action === "start" || action === "resume" ? "primary" : "plain"}
            busy={running === action}
            disabled={running !== null || !allowed.has(action)}
            title={allowed.has(action) ? undefined : `Not possible while ${session.status}`}
            onClick={() => void act(action)}
          >
            {action}
          </Button>
        ))}
      </div>
      {error ? (
        <p role="alert" className="font-mono text-xs text-signal">
          {error}
        </p>
      ) : null}
    </div>
  );
}
