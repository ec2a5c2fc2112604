/** A context's versions rebuilt from its history, and the difference between two of them. */
import type { ContextChange, Json, JsonObject } from "../api/types";

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function clone<T extends Json>(value: T): T {
  return structuredClone(value);
}

/** Sets (or, with `undefined`, deletes) a dot path, creating objects on the way. */
export function setPath(data: JsonObject, path: string, value: Json | undefined): JsonObject {
  if (!path) return isObject(value) ? clone(value) : {};
  const keys = path.split(".");
  const root = clone(data);
  let node: JsonObject = root;
  for (const key of keys.slice(0, -1)) {
    const child = node[key];
    if (!isObject(child)) {
      if (value === undefined) return root;
      node[key] = {};
    }
    node = node[key] as JsonObject;
  }
  const last = keys[keys.length - 1] as string;
  if (value === undefined) delete node[last];
  else node[last] = value;
  return root;
}

/**
 * The document as it was at `version`, from the current one and the changes that made the
 * versions after it (undone newest first). A change's `old_value` null means the path was absent.
 */
export function dataAtVersion(
  current: JsonObject,
  currentVersion: number,
  history: readonly ContextChange[],
  version: number,
): JsonObject {
  if (version >= currentVersion) return clone(current);
  const later = history
    .filter((change) => change.version > version)
    .sort((a, b) => b.version - a.version);
  let data = clone(current);
  for (const change of later) {
    data = setPath(data, change.path, change.old_value === null ? undefined : change.old_value);
  }
  return data;
}

/** The versions the history names, oldest first, with who made each. */
export function versionsOf(
  history: readonly ContextChange[],
  currentVersion: number,
): { version: number; changedBy: string; at: string | null; paths: string[] }[] {
  const byVersion = new Map<number, { changedBy: string; at: string | null; paths: string[] }>();
  for (const change of history) {
    const entry = byVersion.get(change.version) ?? {
      changedBy: change.changed_by,
      at: change.changed_at,
      paths: [],
    };
    entry.paths.push(change.path || "(document)");
    byVersion.set(change.version, entry);
  }
  if (!byVersion.has(currentVersion)) byVersion.set(currentVersion, { changedBy: "", at: null, paths: [] });
  return [...byVersion.entries()]
    .sort(([a], [b]) => a - b)
    .map(([version, entry]) => ({ version, ...entry }));
}

/** Leaves by dot path; empty objects and arrays count as leaves. */
export function flatten(data: Json, prefix = ""): Map<string, Json> {
  const out = new Map<string, Json>();
  if (isObject(data) && Object.keys(data).length) {
    for (const [key, value] of Object.entries(data)) {
      for (const [path, leaf] of flatten(value, prefix ? `${prefix}.${key}` : key)) out.set(path, leaf);
    }
  } else if (prefix) {
    out.set(prefix, data);
  }
  return out;
}

export interface DiffLine {
  path: string;
  kind: "added" | "removed" | "changed";
  before?: Json;
  after?: Json;
}

export function diffData(before: JsonObject, after: JsonObject): DiffLine[] {
  const a = flatten(before);
  const b = flatten(after);
  const lines: DiffLine[] = [];
  for (const [path, value] of a) {
    if (!b.has(path)) lines.push({ path, kind: "removed", before: value });
    else if (JSON.stringify(b.get(path)) !== JSON.stringify(value))
      lines.push({ path, kind: "changed", before: value, after: b.get(path) as Json });
  }
  for (const [path, value] of b) if (!a.has(path)) lines.push({ path, kind: "added", after: value });
  return lines.sort((x, y) => x.path.localeCompare(y.path));
}

/**
 * The versions one can pick: each the history names, and the one before the earliest change
 * (the document as created, whose own writing the history may not hold).
 */
export function versionChoices(history: readonly ContextChange[], currentVersion: number): number[] {
  const named = versionsOf(history, currentVersion).map((v) => v.version);
  const first = named[0] ?? currentVersion;
  return first > 0 && history.length ? [first - 1, ...named] : named;
}
