import { describe, expect, it } from "vitest";
import type { ContextChange, Json } from "../api/types";
import { dataAtVersion, diffData, flatten, setPath, versionChoices, versionsOf } from "./context";

const change = (version: number, path: string, old_value: Json, new_value: Json): ContextChange => ({
  version,
  path,
  old_value,
  new_value,
  changed_by: `w${version}`,
  changed_at: null,
});

// v1 created {config: {model: "a"}}; v2 set config.model b and added notes; v3 deleted notes.
const history = [
  change(1, "config", null, { model: "a" }),
  change(2, "config.model", "a", "b"),
  change(2, "notes", null, "draft"),
  change(3, "notes", "draft", null),
];
const current = { config: { model: "b" } };

describe("context versions", () => {
  it("rebuilds every earlier version by undoing later changes", () => {
    expect(dataAtVersion(current, 3, history, 3)).toEqual(current);
    expect(dataAtVersion(current, 3, history, 2)).toEqual({ config: { model: "b" }, notes: "draft" });
    expect(dataAtVersion(current, 3, history, 1)).toEqual({ config: { model: "a" } });
    expect(dataAtVersion(current, 3, history, 0)).toEqual({});
  });

  it("lists versions oldest first with the paths each changed", () => {
    expect(versionsOf(history, 3).map((v) => [v.version, v.paths])).toEqual([
      [1, ["config"]],
      [2, ["config.model", "notes"]],
      [3, ["notes"]],
    ]);
    expect(versionChoices(history, 3)).toEqual([0, 1, 2, 3]);
    // Creation (v1) not in the history: v1 is still a choice, rebuilt from v2's changes.
    expect(versionChoices(history.slice(1), 3)).toEqual([1, 2, 3]);
    expect(versionChoices([], 1)).toEqual([1]);
  });

  it("diffs two versions by dot path", () => {
    const v1 = dataAtVersion(current, 3, history, 1);
    const v2 = dataAtVersion(current, 3, history, 2);
    expect(diffData(v1, v2)).toEqual([
      { path: "config.model", kind: "changed", before: "a", after: "b" },
      { path: "notes", kind: "added", after: "draft" },
    ]);
    expect(diffData(v2, v1).map((line) => line.kind)).toEqual(["changed", "removed"]);
  });

  it("sets and deletes nested paths without touching the input", () => {
    const base = { a: { b: 1 } };
    expect(setPath(base, "a.c.d", 2)).toEqual({ a: { b: 1, c: { d: 2 } } });
    expect(setPath(base, "a.b", undefined)).toEqual({ a: {} });
    expect(base).toEqual({ a: { b: 1 } });
    expect([...flatten({ x: [], y: {} , z: { w: null } })]).toEqual([
      ["x", []],
      ["y", {}],
      ["z.w", null],
    ]);
  });
});
