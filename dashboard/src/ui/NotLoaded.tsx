/** What stands in for a view whose code is still loading, or could not be loaded. */
export function NotLoaded({ what, failed }: { what: string; failed: boolean }) {
  return failed ? (
    <p role="alert" className="font-mono text-sm text-signal">
      The {what} could not be loaded; reload the page to try again.
    </p>
  ) : (
    <p role="status" className="font-mono text-sm text-fg-muted">
      Loading the {what}…
    </p>
  );
}
