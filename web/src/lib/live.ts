// The live stream over /api/v1/ws: one connection for all of the user's groups. It remembers, per
// group, the last sequence number it handed on; after any disconnect it subscribes again from there, so
// nothing is missed and nothing comes twice (the server sends exactly what follows `after_seq`; a post
// at or below the mark is dropped here as well). The session cookie authenticates the upgrade.
import type { ClientFrame, ServerFrame } from './api-types';

export type LiveStatus = 'connecting' | 'online' | 'offline';

export interface LiveEvents {
  frame(frame: ServerFrame): void;
  status(status: LiveStatus): void;
  /** The server closed the connection because the session or account ended (close code 1008). */
  sessionEnded(): void;
}

type SocketFactory = (url: string) => WebSocket;

/** Waits between reconnection attempts: 0.5, 1, 2, 4, 8, 15, 15 … seconds. */
export function backoff(attempt: number): number {
  return Math.min(15_000, 500 * 2 ** attempt);
}

export class Live {
  /** Last sequence number handed on, per subscribed group. */
  private readonly after = new Map<string, number>();
  private socket: WebSocket | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;
  private nextId = 0;

  constructor(
    private readonly url: string,
    private readonly events: LiveEvents,
    private readonly open: SocketFactory = (u) => new WebSocket(u),
  ) {}

  /** The last sequence number handed on for `group` (0 before any). */
  position(group: string): number {
    return this.after.get(group) ?? 0;
  }

  /** Follows `group` from after `seq` (never moves an existing mark backwards). */
  follow(group: string, seq: number): void {
    const known = this.after.get(group);
    if (known !== undefined && known >= seq) return;
    this.after.set(group, seq);
    // Not connected: the subscription goes out with the others when the connection opens.
    if (this.socket?.readyState === 1) {
      this.send({ type: 'subscribe', id: this.id(), groups: [{ group_id: group, after_seq: seq }] });
    }
  }

  unfollow(group: string): void {
    this.after.delete(group);
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.socket?.close(1000);
    this.socket = null;
  }

  /** Try again now (the browser says the network is back). */
  wake(): void {
    if (this.stopped || (this.socket && this.socket.readyState <= 1)) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.attempt = 0;
    this.connect();
  }

  send(frame: ClientFrame): boolean {
    if (this.socket?.readyState !== 1) return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  private id(): string {
    this.nextId += 1;
    return `l${this.nextId}`;
  }

  private connect(): void {
    this.events.status('connecting');
    const socket = this.open(this.url);
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      this.events.status('online');
      const groups = [...this.after].map(([group_id, after_seq]) => ({ group_id, after_seq }));
      if (groups.length) this.send({ type: 'subscribe', id: this.id(), groups });
    };
    socket.onmessage = (event: MessageEvent) => {
      let frame: ServerFrame;
      try {
        frame = JSON.parse(String(event.data)) as ServerFrame;
      } catch {
        return;
      }
      this.accept(frame);
    };
    socket.onclose = (event: CloseEvent) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (event.code === 1008) {
        this.stopped = true;
        this.events.status('offline');
        this.events.sessionEnded();
        return;
      }
      this.events.status('offline');
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        this.timer = null;
        this.connect();
      }, backoff(this.attempt));
      this.attempt += 1;
    };
  }

  /** Hands a frame on, dropping a post already handed on (at or below the group's mark). */
  accept(frame: ServerFrame): void {
    if (frame.type === 'post') {
      const group = frame.post.group_id;
      const last = this.after.get(group);
      if (last === undefined || frame.post.seq <= last) return;
      this.after.set(group, frame.post.seq);
    }
    if (frame.type === 'membership_changed') this.after.delete(frame.group_id);
    this.events.frame(frame);
  }
}
