import { describe, expect, it } from "vitest";
import { LiveFeed, type LiveEvent, type SocketLike, type Timers, parseMessage } from "./feed";

class FakeSocket implements SocketLike {
  onopen: SocketLike["onopen"] = null;
  onmessage: SocketLike["onmessage"] = null;
  onclose: SocketLike["onclose"] = null;
  onerror: SocketLike["onerror"] = null;
  closed = false;
  constructor(readonly url: string) {}
  send(message: object): void {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  close(): void {
    this.closed = true;
    this.onclose?.({});
  }
}

class ManualTimers implements Timers {
  queue: { callback: () => void; ms: number }[] = [];
  set(callback: () => void, ms: number): unknown {
    this.queue.push({ callback, ms });
    return this.queue.length;
  }
  clear(): void {
    this.queue = [];
  }
  runNext(): number {
    const next = this.queue.shift();
    next?.callback();
    return next?.ms ?? -1;
  }
}

const event = (seq: number) => ({
  type: "event",
  seq,
  subject: `orch.session.s1.e${seq}`,
  event: { type: "session.started", session_id: "s1" },
});
const tick = () => new Promise<void>((resolve) => queueMicrotask(resolve));

function harness(since?: number, backlog?: number) {
  const sockets: FakeSocket[] = [];
  const received: LiveEvent[][] = [];
  const statuses: string[] = [];
  const timers = new ManualTimers();
  const feed = new LiveFeed({
    path: "/ws/sessions",
    create: (url) => {
      const socket = new FakeSocket(url);
      sockets.push(socket);
      return socket;
    },
    onEvents: (batch) => received.push(batch),
    onStatus: (status) => statuses.push(status),
    timers,
    schedule: (flush) => queueMicrotask(flush),
    minDelayMs: 100,
    maxDelayMs: 400,
    ...(since === undefined ? {} : { since }),
    ...(backlog === undefined ? {} : { backlog }),
  });
  return { feed, sockets, received, statuses, timers };
}

describe("LiveFeed", () => {
  it("starts live, batches events and resumes after the last sequence on reconnect", async () => {
    const { feed, sockets, received, statuses, timers } = harness();
    feed.start();
    expect(sockets[0]?.url).toBe("/ws/sessions");
    sockets[0]?.send({ type: "hello", last_seq: 10 });
    sockets[0]?.send(event(11));
    sockets[0]?.send(event(12));
    await tick();
    expect(received.map((batch) => batch.map((e) => e.seq))).toEqual([[11, 12]]);

    sockets[0]?.close();
    expect(feed.status).toBe("reconnecting");
    expect(timers.runNext()).toBe(100);
    expect(sockets[1]?.url).toBe("/ws/sessions?since=12");
    // The server replays from 13; a repeated 12 (racing the hang-up) is dropped.
    sockets[1]?.send({ type: "hello", last_seq: 20 });
    sockets[1]?.send(event(12));
    sockets[1]?.send(event(13));
    await tick();
    expect(received.map((batch) => batch.map((e) => e.seq))).toEqual([[11, 12], [13]]);
    expect(statuses).toEqual(["connecting", "live", "reconnecting", "live"]);
  });

  it("backs off while the gateway stays away, up to the limit, and resets once connected", () => {
    const { feed, sockets, timers } = harness();
    feed.start();
    const delays: number[] = [];
    for (let i = 0; i < 4; i += 1) {
      sockets[sockets.length - 1]?.close();
      delays.push(timers.runNext());
    }
    expect(delays).toEqual([100, 200, 400, 400]);
    sockets[sockets.length - 1]?.send({ type: "hello", last_seq: 0 });
    sockets[sockets.length - 1]?.close();
    expect(timers.runNext()).toBe(100);
  });

  it("replays from a given sequence and stops for good", async () => {
    const { feed, sockets, received, timers } = harness(0);
    feed.start();
    expect(sockets[0]?.url).toBe("/ws/sessions?since=0");
    sockets[0]?.send({ type: "hello", last_seq: 3 });
    sockets[0]?.send(event(1));
    await tick();
    expect(received).toHaveLength(1);
    feed.stop();
    expect(sockets[0]?.closed).toBe(true);
    expect(timers.queue).toHaveLength(0);
    expect(feed.status).toBe("stopped");
  });

  it("opens again a backlog back from the newest event the hello names", async () => {
    const { feed, sockets, received, statuses } = harness(undefined, 100);
    feed.start();
    sockets[0]?.send({ type: "hello", last_seq: 250 });
    expect(sockets[0]?.closed).toBe(true);
    expect(sockets[1]?.url).toBe("/ws/sessions?since=150");
    sockets[1]?.send({ type: "hello", last_seq: 250 });
    sockets[1]?.send(event(151));
    await tick();
    expect(received.map((b) => b.map((e) => e.seq))).toEqual([[151]]);
    expect(statuses).toEqual(["connecting", "live"]);
  });

  it("ignores what is not a message of the protocol", () => {
    expect(parseMessage("not json")).toBeNull();
    expect(parseMessage(JSON.stringify({ type: "event" }))).toBeNull();
    expect(parseMessage(42)).toBeNull();
    expect(parseMessage(JSON.stringify({ type: "hello", last_seq: 5 }))).toEqual({
      type: "hello",
      last_seq: 5,
    });
  });
});
