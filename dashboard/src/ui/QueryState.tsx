import type { ReactNode } from "react";
import { ApiError } from "../api/client";
import { Button } from "./Button";

export function errorText(error: unknown): string {
  if (error instanceof ApiError) return `${error.message}${error.status ? ` (${error.status} ${error.code})` : ""}`;
  return error instanceof Error ? error.message : String(error);
}

/** The four states of anything loaded: loading, error, empty, and the thing itself. */
export function QueryState({
  what,
  isPending,
  error,
  isEmpty,
  empty,
  retry,
  children,
}: {
  what: string;
  isPending: boolean;
  error: unknown;
  isEmpty: boolean;
  empty: ReactNode;
  retry?: () => void;
  children: ReactNode;
}) {
  if (isPending) {
    return (
      <p role="status" className="py-6 font-mono text-sm text-fg-muted">
        <span aria-hidden="true">▮▯▯ </span>Loading {what}…
      </p>
    );
  }
  if (error) {
    return (
      <div role="alert" className="flex flex-wrap items-center gap-3 border-l-2 border-signal py-3 pl-3">
        <p className="font-mono text-sm text-signal">Could not load {what}: {errorText(error)}</p>
        {retry ? <Button onClick={retry}>Try again</Button> : null}
      </div>
    );
  }
  if (isEmpty) return <div className="py-6 text-sm text-fg-muted">{empty}</div>;
  return <>{children}</>;
}
