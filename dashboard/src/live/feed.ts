/**
 * One live socket of the gateway, kept open: reconnects with backoff and resumes after the last
 * sequence it handled (`?since=SEQ`), so an outage loses no event and repeats none.
 */
import { apiKey } from "../api/auth";
import type { EventEnvelope, SocketMessage } from "../api/types";

export interface SocketLike {
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: unknown) => void) | null;
  onerror: ((event: unknown) => void) | null;
  close(): void;
}

export type SocketFactory = (url: string) => SocketLike;
export type FeedStatus = "connecting" | "live" | "reconnecting" | "stopped";

export interface LiveEvent {
  seq: number;
  subject: string;
  event: EventEnvelope;
}

export interface Timers {
  set(callback: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export interface FeedOptions {
  /** Path and query of the socket, e.g. `/ws/sessions`. */
  path: string;
  create: SocketFactory;
  onEvents: (events: LiveEvent[]) => void;
  onStatus?: (status: FeedStatus) => void;
  /** Replay from after this sequence on the first connection (0 = the whole stream). */
  since?: number;
  /** Without `since`: start this many events back from the newest (the hello names it). */
  backlog?: number;
  minDelayMs?: number;
  maxDelayMs?: number;
  timers?: Timers;
  /** Runs the hand-over of the events received so far; default: after 16 ms (one frame). */
  schedule?: (flush: () => void) => void;
}

const nextFrame = (flush: () => void) => void setTimeout(flush, 16);

const browserTimers: Timers = {
  set: (callback, ms) => setTimeout(callback, ms),
  clear: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export function parseMessage(data: unknown): SocketMessage | null {
  if (typeof data !== "string") return null;
  try {
    const value: unknown = JSON.parse(data);
    if (typeof value !== "object" || value === null || !("type" in value)) return null;
    const message = value as SocketMessage;
    if (message.type === "hello" && typeof message.last_seq === "number") return message;
    if (message.type === "event" && typeof message.seq === "number") return message;
    return null;
  } catch {
    return null;
  }
}

export class LiveFeed {
  private socket: SocketLike | null = null;
  private timer: unknown = null;
  private delay: number;
  private stopped = true;
  private pending: LiveEvent[] = [];
  private flushQueued = false;
  /** The newest sequence handled; null until the first hello when not replaying. */
  lastSeq: number | null;
  status: FeedStatus = "stopped";

  constructor(private readonly options: FeedOptions) {
    this.lastSeq = options.since ?? null;
    this.delay = options.minDelayMs ?? 500;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) (this.options.timers ?? browserTimers).clear(this.timer);
    this.timer = null;
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = null;
      socket.close();
    }
    this.setStatus("stopped");
  }

  url(): string {
    const { path } = this.options;
    if (this.lastSeq === null) return path;
    return `${path}${path.includes("?") ? "&" : "?"}since=${this.lastSeq}`;
  }

  private connect(): void {
    if (this.status === "stopped") this.setStatus("connecting"); // after a drop: "reconnecting"
    const socket = this.options.create(this.url());
    this.socket = socket;
    socket.onmessage = (message) => this.receive(message.data);
    socket.onclose = () => this.dropped(socket);
    socket.onerror = () => socket.close();
  }

  private receive(data: unknown): void {
    const message = parseMessage(data);
    if (!message) return;
    if (message.type === "hello") {
      this.delay = this.options.minDelayMs ?? 500;
      if (this.lastSeq === null && this.options.backlog) {
        // Only now is the newest sequence known: open again from that far back.
        this.lastSeq = Math.max(message.last_seq - this.options.backlog, 0);
        this.reopen();
        return;
      }
      if (this.lastSeq === null) this.lastSeq = message.last_seq;
      this.setStatus("live");
      return;
    }
    if (this.lastSeq !== null && message.seq <= this.lastSeq) return; // seen before a reconnect
    this.lastSeq = message.seq;
    this.pending.push({ seq: message.seq, subject: message.subject, event: message.event });
    // Events arriving together (a replay, a burst) are handed on as one batch, at most one a
    // frame: a replay of thousands of events is a few renders, not thousands.
    if (!this.flushQueued) {
      this.flushQueued = true;
      (this.options.schedule ?? nextFrame)(() => this.flush());
    }
  }

  private reopen(): void {
    const socket = this.socket;
    if (socket) {
      socket.onclose = null;
      socket.onmessage = null;
      socket.close();
    }
    this.connect();
  }

  private flush(): void {
    this.flushQueued = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length && !this.stopped) this.options.onEvents(batch);
  }

  private dropped(socket: SocketLike): void {
    if (socket !== this.socket || this.stopped) return;
    this.socket = null;
    this.setStatus("reconnecting");
    const timers = this.options.timers ?? browserTimers;
    this.timer = timers.set(() => {
      this.timer = null;
      if (!this.stopped) this.connect();
    }, this.delay);
    this.delay = Math.min(this.delay * 2, this.options.maxDelayMs ?? 10_000);
  }

  private setStatus(status: FeedStatus): void {
    if (status === this.status) return;
    this.status = status;
    this.options.onStatus?.(status);
  }
}

/** The subprotocols that carry an API key: a browser cannot set headers on a WebSocket. The
 * gateway selects `orch.events` and never echoes the key. */
export function keyProtocols(key: string | null): string[] {
  return key ? ["orch.events", `orch.key.${key}`] : [];
}

/** A feed on the page's own gateway, with the page's API key. */
export function browserSocket(path: string): SocketLike {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${scheme}//${window.location.host}${path}`;
  return new WebSocket(url, keyProtocols(apiKey())) as unknown as SocketLike;
}
