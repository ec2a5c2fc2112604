import { describe, expect, it } from "vitest";
import { apiKey, keyFromHash, keyRefused, setApiKey } from "./auth";

describe("the API key", () => {
  it("comes from the URL fragment, leaving the rest of it", () => {
    expect(keyFromHash("#key=orch_ab_cd")).toEqual({ key: "orch_ab_cd", rest: "" });
    expect(keyFromHash("#tab=graph&key=orch_ab_cd")).toEqual({ key: "orch_ab_cd", rest: "#tab=graph" });
    expect(keyFromHash("")).toEqual({ key: null, rest: "" });
    expect(keyFromHash("#key=")).toEqual({ key: null, rest: "" });
  });

  it("is kept, refused and replaced", () => {
    setApiKey("orch_one");
    expect(apiKey()).toBe("orch_one");
    keyRefused();
    setApiKey("orch_two");
    expect(apiKey()).toBe("orch_two");
    setApiKey(null);
    expect(apiKey()).toBeNull();
  });
});
