/**
 * A layered drawing for large task graphs, in milliseconds where dagre takes seconds: each task
 * one column right of its latest predecessor, the order within a column by the mean place of
 * its neighbours (a few sweeps each way, the one with the fewest crossings kept).
 */

export interface Link {
  source: string;
  target: string;
}

/** The column of each id: 0 without predecessors, else one past its furthest predecessor. An id
 * on a cycle (a graph the service would refuse) goes one past the columns found. */
export function columnsOf(ids: readonly string[], links: readonly Link[]): Map<string, number> {
  const successors = new Map<string, string[]>(ids.map((id) => [id, []]));
  const waiting = new Map<string, number>(ids.map((id) => [id, 0]));
  for (const { source, target } of links) {
    if (!successors.has(source) || !waiting.has(target)) continue;
    successors.get(source)?.push(target);
    waiting.set(target, (waiting.get(target) ?? 0) + 1);
  }
  const column = new Map<string, number>();
  const ready = ids.filter((id) => waiting.get(id) === 0);
  for (const id of ready) column.set(id, 0);
  for (let i = 0; i < ready.length; i += 1) {
    const id = ready[i] as string;
    const next = (column.get(id) ?? 0) + 1;
    for (const target of successors.get(id) ?? []) {
      column.set(target, Math.max(column.get(target) ?? 0, next));
      const left = (waiting.get(target) ?? 0) - 1;
      waiting.set(target, left);
      if (left === 0) ready.push(target);
    }
  }
  let last = -1;
  for (const id of ready) last = Math.max(last, column.get(id) ?? 0);
  for (const id of ids) if (waiting.get(id)) column.set(id, last + 1);
  return column;
}

/** Links between neighbouring columns that cross, counted from the places in `order`. */
export function crossings(order: readonly (readonly string[])[], links: readonly Link[]): number {
  const place = placesOf(order);
  const between: [number, number][][] = order.map(() => []);
  for (const { source, target } of links) {
    const from = place.get(source);
    const to = place.get(target);
    if (from && to && to.column === from.column + 1) between[from.column]?.push([from.index, to.index]);
  }
  let total = 0;
  for (const pairs of between) {
    // Sorted by the left end, every later pair whose right end is lower crosses this one.
    pairs.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    total += inversions(pairs.map((p) => p[1]));
  }
  return total;
}

function inversions(values: number[]): number {
  if (values.length < 2) return 0;
  const middle = values.length >> 1;
  const left = values.slice(0, middle);
  const right = values.slice(middle);
  let count = inversions(left) + inversions(right);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < left.length && j < right.length) {
    if ((left[i] as number) <= (right[j] as number)) values[k++] = left[i++] as number;
    else {
      values[k++] = right[j++] as number;
      count += left.length - i;
    }
  }
  while (i < left.length) values[k++] = left[i++] as number;
  while (j < right.length) values[k++] = right[j++] as number;
  return count;
}

function placesOf(order: readonly (readonly string[])[]): Map<string, { column: number; index: number }> {
  const place = new Map<string, { column: number; index: number }>();
  order.forEach((ids, column) => ids.forEach((id, index) => place.set(id, { column, index })));
  return place;
}

const SWEEPS = 4;

/**
 * The ids of each column, in an order with few crossings: starting from the given order, each
 * column is sorted by the mean place of its neighbours in the column before (sweeping right) or
 * after (sweeping left); an id without such neighbours keeps its place.
 */
export function orderColumns(columns: readonly (readonly string[])[], links: readonly Link[]): string[][] {
  const before = new Map<string, string[]>();
  const after = new Map<string, string[]>();
  const add = (map: Map<string, string[]>, key: string, value: string) => {
    const list = map.get(key);
    if (list) list.push(value);
    else map.set(key, [value]);
  };
  for (const { source, target } of links) {
    add(before, target, source);
    add(after, source, target);
  }
  let order = columns.map((ids) => [...ids]);
  let best = order;
  let fewest = crossings(order, links);
  for (let sweep = 0; sweep < SWEEPS * 2 && fewest > 0; sweep += 1) {
    const rightward = sweep % 2 === 0;
    order = order.map((ids) => [...ids]);
    const index = new Map<string, number>();
    order.forEach((ids) => ids.forEach((id, i) => index.set(id, i)));
    const sequence = order.map((_, i) => (rightward ? i : order.length - 1 - i));
    for (const column of sequence.slice(1)) {
      const ids = order[column] as string[];
      const neighbours = rightward ? before : after;
      const weight = new Map<string, number>();
      ids.forEach((id, i) => {
        const places = (neighbours.get(id) ?? []).map((n) => index.get(n)).filter((p) => p !== undefined);
        weight.set(id, places.length ? places.reduce((a, b) => a + b, 0) / places.length : i);
      });
      ids.sort((a, b) => (weight.get(a) ?? 0) - (weight.get(b) ?? 0));
      ids.forEach((id, i) => index.set(id, i));
    }
    const count = crossings(order, links);
    if (count < fewest) {
      best = order;
      fewest = count;
    }
  }
  return best;
}
