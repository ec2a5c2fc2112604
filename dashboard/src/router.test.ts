import { describe, expect, it } from "vitest";
import { routeOf } from "./router";

describe("routes", () => {
  it("maps paths to views", () => {
    expect(routeOf("/")).toEqual({ view: "monitor" });
    expect(routeOf("/sessions/new")).toEqual({ view: "create" });
    const id = "0b5c5d8e-2f0a-4a8e-9a53-2a4f7f1f9d10";
    expect(routeOf(`/sessions/${id}`)).toEqual({ view: "session", id });
    expect(routeOf("/agents")).toEqual({ view: "agents" });
    expect(routeOf("/nope")).toEqual({ view: "missing", path: "/nope" });
  });
});
