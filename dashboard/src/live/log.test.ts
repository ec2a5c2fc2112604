import { describe, expect, it } from "vitest";
import type { LiveEvent } from "./feed";
import { EventLog } from "./log";

const ev = (seq: number) => ({ seq, subject: "orch.session.s.started", event: {} }) as LiveEvent;

describe("EventLog", () => {
  it("keeps the newest events up to its capacity and tells subscribers", () => {
    const log = new EventLog(3);
    let told = 0;
    const off = log.subscribe(() => (told += 1));
    log.push([ev(1), ev(2)]);
    log.push([ev(3), ev(4)]);
    expect(log.snapshot().map((e) => e.seq)).toEqual([2, 3, 4]);
    log.setStatus("live");
    expect(log.statusSnapshot()).toBe("live");
    off();
    log.push([ev(5)]);
    expect(told).toBe(3);
  });
});
