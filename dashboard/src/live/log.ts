/** The newest live events, kept for the event tail; subscribers are told after each batch. */
import type { FeedStatus, LiveEvent } from "./feed";

export class EventLog {
  private events: LiveEvent[] = [];
  private listeners = new Set<() => void>();
  status: FeedStatus = "stopped";

  constructor(private readonly capacity = 2000) {}

  push(batch: readonly LiveEvent[]): void {
    const next = this.events.concat(batch);
    this.events = next.length > this.capacity ? next.slice(next.length - this.capacity) : next;
    this.emit();
  }

  setStatus(status: FeedStatus): void {
    this.status = status;
    this.emit();
  }

  snapshot = (): LiveEvent[] => this.events;
  statusSnapshot = (): FeedStatus => this.status;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  private emit(): void {
    for (const listener of this.listeners) listener();
  }
}
