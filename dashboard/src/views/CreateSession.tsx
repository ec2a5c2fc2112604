import * as Label from "@radix-ui/react-label";
import { useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent, type ReactNode } from "react";
import { ApiError, api, type CreateSessionInput } from "../api/client";
import { SESSION_PRIORITIES, SESSION_TYPES, type Session } from "../api/types";
import { keys } from "../live/sync";
import { upsert } from "../model/merge";
import { navigate } from "../router";
import { Button } from "../ui/Button";
import { useAction } from "../ui/useAction";

interface Form {
  title: string;
  initial_prompt: string;
  session_type: string;
  priority: string;
  model_identifier: string;
  max_duration_seconds: string;
  tags: string;
  max_depth: string;
  command: string;
}

const EMPTY: Form = {
  title: "",
  initial_prompt: "",
  session_type: "execution",
  priority: "medium",
  model_identifier: "",
  max_duration_seconds: "3600",
  tags: "",
  max_depth: "1",
  command: "",
};

/** The body the API takes; the API alone judges it (lengths, ranges), and its message is shown. */
export function toInput(form: Form): CreateSessionInput {
  const agent_config: Record<string, string> = {};
  if (form.max_depth.trim()) agent_config.max_depth = form.max_depth.trim();
  if (form.command.trim()) agent_config.command = form.command.trim();
  const input: CreateSessionInput = {
    title: form.title,
    initial_prompt: form.initial_prompt,
    session_type: form.session_type,
    priority: form.priority,
    agent_config,
    tags: form.tags.split(",").map((t) => t.trim()).filter(Boolean),
  };
  if (form.model_identifier.trim()) input.model_identifier = form.model_identifier.trim();
  const duration = Number(form.max_duration_seconds);
  if (form.max_duration_seconds.trim() && Number.isFinite(duration)) input.max_duration_seconds = duration;
  return input;
}

/** Which form field an API error names (`session.title`, `title`, `agent_config.max_depth` …). */
export function fieldOf(error: unknown): keyof Form | null {
  if (!(error instanceof ApiError) || !error.field) return null;
  const last = error.field.split(".").pop() ?? "";
  return last in EMPTY ? (last as keyof Form) : null;
}

function Field({
  name,
  label,
  hint,
  error,
  children,
}: {
  name: keyof Form;
  label: string;
  hint?: string;
  error: string | null;
  children: ReactNode;
}) {
  return (
    <div className="flex flex-col gap-1">
      <Label.Root htmlFor={`f-${name}`} className="label-caps">
        {label}
      </Label.Root>
      {children}
      {hint ? (
        <p id={`f-${name}-hint`} className="text-xs text-fg-muted">
          {hint}
        </p>
      ) : null}
      {error ? (
        <p id={`f-${name}-error`} className="font-mono text-xs text-signal">
          {error}
        </p>
      ) : null}
    </div>
  );
}

export function CreateSession() {
  const client = useQueryClient();
  const [form, setForm] = useState<Form>(EMPTY);
  const create = useAction(api.createSession, (session: Session) => {
    client.setQueryData<Session[]>(keys.sessions, (list) => (list ? upsert(list, session) : list));
    navigate(`/sessions/${session.id}`);
  });
  const errorField = fieldOf(create.error);
  const errorFor = (name: keyof Form) => (errorField === name ? create.errorMessage : null);
  const control = (name: keyof Form, hint?: boolean) => ({
    id: `f-${name}`,
    name,
    value: form[name],
    "aria-invalid": errorField === name || undefined,
    "aria-describedby": [hint ? `f-${name}-hint` : "", errorField === name ? `f-${name}-error` : ""].filter(Boolean).join(" ") || undefined,
    onChange: (e: { target: { value: string } }) => setForm((f) => ({ ...f, [name]: e.target.value })),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate(toInput(form));
  };

  return (
    <div className="max-w-3xl">
      <h1 className="text-3xl font-black uppercase leading-none">New session</h1>
      <p className="mt-1 text-sm text-fg-muted">
        A prompt the orchestrator breaks into tasks. Created pending; start it from its page.
      </p>
      <form onSubmit={submit} noValidate className="mt-6 grid grid-cols-1 gap-5 md:grid-cols-2" aria-label="New session">
        <div className="md:col-span-2">
          <Field name="title" label="Title" hint="1 to 200 characters; IND-… naming is the convention." error={errorFor("title")}>
            <input className="field" autoComplete="off" {...control("title", true)} />
          </Field>
        </div>
        <div className="md:col-span-2">
          <Field name="initial_prompt" label="Prompt" hint="1 to 10,000 characters. A numbered or bulleted list becomes one task per line." error={errorFor("initial_prompt")}>
            <textarea className="field min-h-[8rem]" {...control("initial_prompt", true)} />
          </Field>
        </div>
        <Field name="session_type" label="Type" error={errorFor("session_type")}>
          <select className="field" {...control("session_type")}>
            {SESSION_TYPES.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </Field>
        <Field name="priority" label="Priority" error={errorFor("priority")}>
          <select className="field" {...control("priority")}>
            {SESSION_PRIORITIES.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </Field>
        <Field name="model_identifier" label="Model" hint="provider/model, optional" error={errorFor("model_identifier")}>
          <input className="field" {...control("model_identifier", true)} placeholder="anthropic/claude-sonnet-4" />
        </Field>
        <Field name="max_duration_seconds" label="Max duration (s)" hint="60 to 86,400" error={errorFor("max_duration_seconds")}>
          <input className="field" inputMode="numeric" {...control("max_duration_seconds", true)} />
        </Field>
        <Field name="max_depth" label="Decomposition depth" hint="0 runs the prompt as one task" error={errorFor("max_depth")}>
          <input className="field" inputMode="numeric" {...control("max_depth", true)} />
        </Field>
        <Field name="tags" label="Tags" hint="comma separated" error={errorFor("tags")}>
          <input className="field" {...control("tags", true)} />
        </Field>
        <div className="md:col-span-2">
          <Field name="command" label="Shell command for each task" hint="optional; shell workers run it with ORCH_TASK_TITLE set" error={errorFor("command")}>
            <input className="field" {...control("command", true)} />
          </Field>
        </div>
        <div className="flex items-center gap-4 md:col-span-2">
          <Button type="submit" tone="primary" busy={create.isPending}>
            Create session
          </Button>
          {create.errorMessage && !errorField ? (
            <p role="alert" className="font-mono text-sm text-signal">
              {create.errorMessage}
            </p>
          ) : null}
          {create.errorMessage && errorField ? (
            <p role="alert" className="font-mono text-sm text-signal">
              Not created: {create.errorMessage}
            </p>
          ) : null}
        </div>
      </form>
    </div>
  );
}
