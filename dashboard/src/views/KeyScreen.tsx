import * as Label from "@radix-ui/react-label";
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState, type FormEvent } from "react";
import { apiKey, setApiKey } from "../api/auth";
import { Button } from "../ui/Button";

/** Shown in place of the view when the gateway answers 401: asks for an API key. */
export function KeyScreen() {
  const client = useQueryClient();
  const [value, setValue] = useState("");
  const refused = useRef(apiKey() !== null).current;
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!value.trim()) return;
    setApiKey(value.trim());
    void client.invalidateQueries();
  };
  return (
    <section aria-labelledby="key-title" className="max-w-2xl">
      <h1 id="key-title" className="text-3xl font-black uppercase leading-none">
        API key needed
      </h1>
      <p className="mt-2 text-sm text-fg-muted">
        {refused
          ? "The gateway refused this browser's key: it was revoked, has expired or is unknown."
          : "This gateway answers only requests that carry an API key."}{" "}
        <code className="font-mono">orch up</code> prints the dashboard's address with its key; or make one with{" "}
        <code className="font-mono">orch keys create --name dashboard --scope write</code>.
      </p>
      <form onSubmit={submit} noValidate aria-label="Use an API key" className="mt-6 flex flex-col gap-3">
        <Label.Root htmlFor="api-key" className="label-caps">
          API key
        </Label.Root>
        <input
          ref={input}
          id="api-key"
          name="api-key"
          type="password"
          autoComplete="off"
          spellCheck={false}
          placeholder="orch_…"
          aria-describedby="api-key-hint"
          className="field font-mono"
          value={value}
          onChange={(e) => setValue(e.target.value)}
        />
        <p id="api-key-hint" className="text-xs text-fg-muted">
          Kept in this browser only, and sent only to this gateway.
        </p>
        <div>
          <Button type="submit" tone="primary" disabled={!value.trim()}>
            Use this key
          </Button>
        </div>
      </form>
    </section>
  );
}
