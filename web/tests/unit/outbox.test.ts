import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { describe, expect, it } from 'vitest';
import type { NewPost, PostReceipt } from '../../src/lib/api-types';
import { Outbox, Store, newClientMsgId, type Pending, type PendingFile } from '../../src/lib/outbox';

class Offline extends Error {}
class Refused extends Error {}

function pending(body: string, created: number, user = 'u1'): Pending {
  return { client_msg_id: newClientMsgId(), user, group: 'g1', kind: 'update', body, reply_to: null, confirm_not_emergency: false, created };
}

/** A server that stores one post per client message id, as renkei-server does. */
function server() {
  const posts = new Map<string, NewPost>();
  let online = true;
  let refuse = (_: NewPost) => false;
  const send = async (_group: string, post: NewPost): Promise<PostReceipt> => {
    if (!online) throw new Offline();
    if (refuse(post)) throw new Refused();
    posts.set(post.client_msg_id, post);
    return { post: { seq: posts.size } as PostReceipt['post'], off_hours: [] };
  };
  return {
    posts,
    send,
    setOnline: (v: boolean) => (online = v),
    setRefuse: (f: (p: NewPost) => boolean) => (refuse = f),
  };
}

describe('the outbox', () => {
  it('keeps posts written offline and sends each once, in order, when the signal returns', async () => {
    const store = await Store.open(new IDBFactory());
    const s = server();
    const outbox = new Outbox(store, s.send, (e) => e instanceof Offline);
    s.setOnline(false);
    await outbox.add(pending('一つ目', 1));
    await outbox.add(pending('二つ目', 2));
    const waiting = await outbox.flush('u1');
    expect(waiting.map((o) => o.kind)).toEqual(['waiting']);
    expect((await outbox.pending('u1')).map((p) => p.body)).toEqual(['一つ目', '二つ目']);

    s.setOnline(true);
    const [a, b] = await Promise.all([outbox.flush('u1'), outbox.flush('u1')]);
    expect([...a, ...b].filter((o) => o.kind === 'sent').map((o) => o.pending.body)).toEqual(['一つ目', '二つ目']);
    expect([...s.posts.values()].map((p) => p.body)).toEqual(['一つ目', '二つ目']);
    expect(await outbox.pending('u1')).toEqual([]);
  });

  it('survives a reload: a new page finds what the old one could not send', async () => {
    const factory = new IDBFactory();
    const s = server();
    s.setOnline(false);
    const first = new Outbox(await Store.open(factory), s.send, (e) => e instanceof Offline);
    const p = pending('再読み込み前', 1);
    await first.add(p);
    await first.flush('u1');
    s.setOnline(true);
    const second = new Outbox(await Store.open(factory), s.send, (e) => e instanceof Offline);
    await second.flush('u1');
    expect([...s.posts.keys()]).toEqual([p.client_msg_id]);
  });

  it('hands a refused post back instead of retrying it forever, and goes on with the next', async () => {
    const store = await Store.open(new IDBFactory());
    const s = server();
    s.setRefuse((post) => post.body.includes('急変'));
    const outbox = new Outbox(store, s.send, (e) => e instanceof Offline);
    await outbox.add(pending('急変です', 1));
    await outbox.add(pending('通常の報告', 2));
    const outcomes = await outbox.flush('u1');
    expect(outcomes.map((o) => [o.kind, o.pending.body])).toEqual([
      ['refused', '急変です'],
      ['sent', '通常の報告'],
    ]);
    expect(await outbox.pending('u1')).toEqual([]);
  });

  it("keeps one user's posts apart from another's, and drafts until cleared", async () => {
    const store = await Store.open(new IDBFactory());
    await store.put(pending('A', 1, 'u1'));
    await store.put(pending('B', 2, 'u2'));
    expect((await store.pending('u2')).map((p) => p.body)).toEqual(['B']);
    await store.saveDraft({ key: 'u1:g1', body: '書きかけ', kind: 'update' });
    expect((await store.draft('u1:g1'))?.body).toBe('書きかけ');
    await store.saveDraft({ key: 'u1:g1', body: '', kind: 'update' });
    expect(await store.draft('u1:g1')).toBeUndefined();
    await store.clear();
    expect(await store.pending('u1')).toEqual([]);
  });
  it('uploads each file of a post once, keeps its id across a lost signal, and names them in the post', async () => {
    const store = await Store.open(new IDBFactory());
    const s = server();
    const uploaded: string[] = [];
    let uploadOnline = true;
    const upload = async (_p: Pending, f: PendingFile) => {
      if (!uploadOnline) throw new Offline();
      uploaded.push(f.name);
      return { id: `id-${f.name}`, name: f.name, type: 'jpeg', size: 3 } as const;
    };
    const outbox = new Outbox(store, s.send, (e) => e instanceof Offline, upload);
    const p = pending('写真です', 1);
    p.files = [
      { name: 'a.jpg', blob: new Blob(['abc']) },
      { name: 'b.jpg', blob: new Blob(['def']) },
    ];
    await outbox.add(p);
    // The first file goes up; the signal is lost before the post is sent.
    s.setOnline(false);
    expect((await outbox.flush('u1')).map((o) => o.kind)).toEqual(['waiting']);
    expect(uploaded).toEqual(['a.jpg', 'b.jpg']);
    const kept = (await outbox.pending('u1'))[0]!;
    expect(kept.files!.map((f) => f.id)).toEqual(['id-a.jpg', 'id-b.jpg']);
    // Back online: the post goes with both ids, no file uploaded twice.
    s.setOnline(true);
    uploadOnline = false;
    expect((await outbox.flush('u1')).map((o) => o.kind)).toEqual(['sent']);
    expect(uploaded).toEqual(['a.jpg', 'b.jpg']);
    expect([...s.posts.values()][0]!.attachments).toEqual(['id-a.jpg', 'id-b.jpg']);
  });
});
