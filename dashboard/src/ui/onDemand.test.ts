import { describe, expect, it } from "vitest";
import { OnDemand } from "./onDemand";

describe("code loaded on demand", () => {
  it("loads once, telling subscribers as it goes", async () => {
    let calls = 0;
    let finish: (value: string) => void = () => undefined;
    const code = new OnDemand(() => {
      calls += 1;
      return new Promise<string>((resolve) => (finish = resolve));
    });
    const seen: string[] = [];
    code.subscribe(() => seen.push(code.snapshot().status));
    expect(code.snapshot()).toEqual({ status: "idle" });
    code.start();
    code.start();
    expect(calls).toBe(1);
    finish("view");
    await Promise.resolve();
    expect(code.snapshot()).toEqual({ status: "loaded", value: "view" });
    expect(seen).toEqual(["loading", "loaded"]);
    code.start();
    expect(calls).toBe(1);
  });

  it("keeps a failure rather than retrying on every render", async () => {
    let calls = 0;
    const code = new OnDemand(() => {
      calls += 1;
      return Promise.reject(new Error("offline"));
    });
    code.start();
    await new Promise((resolve) => setTimeout(resolve, 0));
    const state = code.snapshot();
    expect(state.status).toBe("failed");
    expect(state.status === "failed" && String(state.error)).toBe("Error: offline");
    code.start();
    expect(calls).toBe(1);
  });
});
