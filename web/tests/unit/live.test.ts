import { describe, expect, it, vi } from 'vitest';
import type { ServerFrame } from '../../src/lib/api-types';
import { Live, backoff } from '../../src/lib/live';

/** A socket the test drives: it records what the client sends and lets the test open and close it. */
class FakeSocket {
  readyState = 0;
  sent: unknown[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: ((e: { code: number }) => void) | null = null;
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  deliver(frame: ServerFrame) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code });
  }
}

const post = (group: string, seq: number): ServerFrame => ({
  type: 'post',
  post: {
    id: `p${seq}`, group_id: group, seq, author: { id: 'a', display_name: 'a', profession: 'nurse', organisation: 'o' },
    kind: 'update', body: `${seq}`, reply_to: null, client_msg_id: `c${seq}`, consent_version: 1,
    created_at: '2026-12-07T00:00:00Z', version: 1, edited_at: null, deleted_at: null,
  },
});

describe('the live connection', () => {
  it('resumes every group from the last post it handed on, and hands nothing on twice', () => {
    vi.useFakeTimers();
    const sockets: FakeSocket[] = [];
    const seen: number[] = [];
    const live = new Live('ws://x/api/v1/ws', {
      frame: (f) => f.type === 'post' && seen.push(f.post.seq),
      status: () => undefined,
      sessionEnded: () => undefined,
    }, () => {
      const s = new FakeSocket();
      sockets.push(s);
      return s as unknown as WebSocket;
    });
    live.follow('g', 3);
    live.start();
    sockets[0]!.open();
    expect(sockets[0]!.sent).toEqual([{ type: 'subscribe', id: 'l1', groups: [{ group_id: 'g', after_seq: 3 }] }]);
    for (const seq of [4, 5, 5, 3]) sockets[0]!.deliver(post('g', seq));
    expect(seen).toEqual([4, 5]);

    sockets[0]!.drop();
    vi.advanceTimersByTime(backoff(0));
    sockets[1]!.open();
    expect(sockets[1]!.sent).toEqual([{ type: 'subscribe', id: 'l2', groups: [{ group_id: 'g', after_seq: 5 }] }]);
    for (const seq of [5, 6]) sockets[1]!.deliver(post('g', seq));
    expect(seen).toEqual([4, 5, 6]);
    vi.useRealTimers();
  });

  it('stops and says so when the server ends the session (1008), instead of reconnecting', () => {
    vi.useFakeTimers();
    const sockets: FakeSocket[] = [];
    let ended = 0;
    const live = new Live('ws://x', { frame: () => undefined, status: () => undefined, sessionEnded: () => (ended += 1) }, () => {
      const s = new FakeSocket();
      sockets.push(s);
      return s as unknown as WebSocket;
    });
    live.start();
    sockets[0]!.open();
    sockets[0]!.drop(1008);
    vi.advanceTimersByTime(60_000);
    expect(ended).toBe(1);
    expect(sockets.length).toBe(1);
    vi.useRealTimers();
  });

  it('waits longer after each failure, up to 15 s', () => {
    expect([0, 1, 2, 3, 4, 5, 9].map(backoff)).toEqual([500, 1000, 2000, 4000, 8000, 15000, 15000]);
  });
});
