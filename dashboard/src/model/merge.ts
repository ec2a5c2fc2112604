/** Folding live snapshots into lists already loaded: newer versions win, order is kept. */

export interface Versioned {
  id: string;
  version: number;
}

/** The list with `item` in place of its older self, or appended when new. Same list if stale. */
export function upsert<T extends Versioned>(list: readonly T[], item: T): T[] {
  const index = list.findIndex((existing) => existing.id === item.id);
  if (index === -1) return [...list, item];
  const existing = list[index];
  if (existing && existing.version > item.version) return list as T[];
  const next = list.slice();
  next[index] = item;
  return next;
}

/** Many snapshots at once (a burst of events), the newest of each id kept. */
export function upsertAll<T extends Versioned>(list: readonly T[], items: readonly T[]): T[] {
  if (!items.length) return list as T[];
  const position = new Map<string, number>();
  list.forEach((item, index) => position.set(item.id, index));
  const next = list.slice();
  for (const item of items) {
    const index = position.get(item.id);
    if (index === undefined) {
      position.set(item.id, next.length);
      next.push(item);
    } else if ((next[index]?.version ?? -1) <= item.version) {
      next[index] = item;
    }
  }
  return next;
}
