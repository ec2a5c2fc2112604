import { describe, expect, it } from "vitest";
import { ApiError } from "../api/client";
import { fieldOf, toInput } from "./CreateSession";

describe("the create form", () => {
  it("sends what was filled in, trimmed, with depth and command as agent config", () => {
    const input = toInput({
      title: "IND-1 parser",
      initial_prompt: "1. parse",
      session_type: "execution",
      priority: "high",
      model_identifier: " ",
      max_duration_seconds: "600",
      tags: "billing, , core",
      max_depth: "1",
      command: " make test ",
    });
    expect(input).toEqual({
      title: "IND-1 parser",
      initial_prompt: "1. parse",
      session_type: "execution",
      priority: "high",
      max_duration_seconds: 600,
      tags: ["billing", "core"],
      agent_config: { max_depth: "1", command: "make test" },
    });
  });

  it("puts an API error on the field it names", () => {
    expect(fieldOf(new ApiError(422, "invalid_argument", "too long", "title"))).toBe("title");
    expect(fieldOf(new ApiError(422, "invalid_argument", "bad", "session.max_duration_seconds"))).toBe("max_duration_seconds");
    expect(fieldOf(new ApiError(422, "invalid_argument", "bad", "workspace"))).toBeNull();
    expect(fieldOf(new Error("x"))).toBeNull();
  });
});
