import { describe, expect, it } from "vitest";
import { columnsOf, crossings, orderColumns, type Link } from "./layers";

const link = (source: string, target: string): Link => ({ source, target });

describe("layered drawing", () => {
  it("puts each id one column past its furthest predecessor", () => {
    // a → b → c, a → c, d alone; the link from an unknown id is ignored.
    const columns = columnsOf(["c", "b", "a", "d"], [link("a", "b"), link("b", "c"), link("a", "c"), link("x", "a")]);
    expect(Object.fromEntries(columns)).toEqual({ a: 0, b: 1, c: 2, d: 0 });
  });

  it("puts ids on a cycle past the others instead of looping", () => {
    const columns = columnsOf(["a", "b", "c"], [link("a", "b"), link("b", "c"), link("c", "b")]);
    expect(Object.fromEntries(columns)).toEqual({ a: 0, b: 1, c: 1 });
  });

  it("counts crossings between neighbouring columns only", () => {
    const order = [["a", "b"], ["c", "d"], ["e"]];
    expect(crossings(order, [link("a", "c"), link("b", "d")])).toBe(0);
    expect(crossings(order, [link("a", "d"), link("b", "c")])).toBe(1);
    // Three links from the top left to the bottom right and back cross each other.
    const wide = [["a", "b", "c"], ["x", "y", "z"]];
    expect(crossings(wide, [link("a", "z"), link("b", "y"), link("c", "x")])).toBe(3);
    expect(crossings(order, [link("a", "e")])).toBe(0);
  });

  it("orders each column after its neighbours, untangling crossed links", () => {
    const columns = [["a", "b", "c"], ["z", "y", "x"], ["3", "2", "1"]];
    const links = [link("a", "x"), link("b", "y"), link("c", "z"), link("x", "1"), link("y", "2"), link("z", "3")];
    expect(crossings(columns, links)).toBe(3);
    const order = orderColumns(columns, links);
    expect(crossings(order, links)).toBe(0);
    expect(order).toEqual([["a", "b", "c"], ["x", "y", "z"], ["1", "2", "3"]]);
  });

  it("keeps the given order when nothing crosses", () => {
    const columns = [["a", "b"], ["d", "c"]];
    const links = [link("a", "d"), link("b", "c")];
    expect(orderColumns(columns, links)).toEqual(columns);
  });
});
