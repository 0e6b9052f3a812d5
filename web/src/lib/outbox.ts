// Never lose a word: every post goes into an outbox kept in IndexedDB before it is sent, and leaves it
// only once the server has acknowledged it (durably committed) or refused it (the text then goes back
// to the composer). Without signal it waits; when the signal returns it is sent with the same client
// message id, so a resend never creates a second post. A photo waits with its post (IndexedDB keeps the
// Blob); each file is uploaded once, its id kept, before the post that names it is sent. Half-written
// drafts are kept here too.
import type { Attachment, CarePolicy, NewPost, PostKind, PostReceipt } from './api-types';

/** A file waiting with its post: `id` once the server has it. */
export interface PendingFile {
  name: string;
  blob: Blob;
  id?: string;
}

export interface Pending {
  /** The client message id: the server keeps one post per id, whatever the number of resends. */
  client_msg_id: string;
  user: string;
  group: string;
  kind: PostKind;
  body: string;
  reply_to: number | null;
  confirm_not_emergency: boolean;
  /** When it was written (ms since the epoch): sends go in this order. */
  created: number;
  /** Photos and documents to share with it. */
  files?: PendingFile[];
  /** A care policy's record (診療方針), for a `care_policy` post. */
  care_policy?: CarePolicy | null;
}

export interface Draft {
  key: string;
  body: string;
  kind: PostKind;
}

const DB_NAME = 'renkei';
const OUTBOX = 'outbox';
const DRAFTS = 'drafts';

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

export class Store {
  private constructor(private readonly db: IDBDatabase) {}

  static async open(factory: IDBFactory = indexedDB): Promise<Store> {
    const open = factory.open(DB_NAME, 1);
    open.onupgradeneeded = () => {
      const db = open.result;
      if (!db.objectStoreNames.contains(OUTBOX)) db.createObjectStore(OUTBOX, { keyPath: 'client_msg_id' });
      if (!db.objectStoreNames.contains(DRAFTS)) db.createObjectStore(DRAFTS, { keyPath: 'key' });
    };
    return new Store(await request(open));
  }

  private tx(store: string, mode: IDBTransactionMode): IDBObjectStore {
    return this.db.transaction(store, mode).objectStore(store);
  }

  async put(p: Pending): Promise<void> {
    await request(this.tx(OUTBOX, 'readwrite').put(p));
  }

  async remove(clientMsgId: string): Promise<void> {
    await request(this.tx(OUTBOX, 'readwrite').delete(clientMsgId));
  }

  /** A user's waiting posts, oldest first. */
  async pending(user: string): Promise<Pending[]> {
    const all = (await request(this.tx(OUTBOX, 'readonly').getAll())) as Pending[];
    return all.filter((p) => p.user === user).sort((a, b) => a.created - b.created);
  }

  async draft(key: string): Promise<Draft | undefined> {
    return (await request(this.tx(DRAFTS, 'readonly').get(key))) as Draft | undefined;
  }

  async saveDraft(d: Draft): Promise<void> {
    const t = this.tx(DRAFTS, 'readwrite');
    if (d.body) await request(t.put(d));
    else await request(t.delete(d.key));
  }

  /** Signing out on purpose clears what this device holds of the user's clinical text. */
  async clear(): Promise<void> {
    await request(this.tx(OUTBOX, 'readwrite').clear());
    await request(this.tx(DRAFTS, 'readwrite').clear());
  }
}

/** What became of one waiting post. */
export type Outcome =
  | { kind: 'sent'; pending: Pending; receipt: PostReceipt }
  | { kind: 'refused'; pending: Pending; error: unknown }
  | { kind: 'waiting'; pending: Pending; error: unknown };

/** Sends one post; throws what the server (or the network) answered. */
export type Send = (group: string, post: NewPost) => Promise<PostReceipt>;
/** Uploads one file of a waiting post; throws what the server (or the network) answered. */
export type Upload = (pending: Pending, file: PendingFile) => Promise<Attachment>;
/** Whether a failure means "try again later" (no signal, server away) rather than a refusal. */
export type Retryable = (error: unknown) => boolean;

export function newClientMsgId(): string {
  return `w-${crypto.randomUUID()}`;
}

export function toNewPost(p: Pending): NewPost {
  return {
    kind: p.kind,
    body: p.body,
    reply_to: p.reply_to,
    client_msg_id: p.client_msg_id,
    confirm_not_emergency: p.confirm_not_emergency,
    attachments: (p.files ?? []).map((f) => f.id).filter((id): id is string => !!id),
    care_policy: p.care_policy ?? null,
  };
}

/**
 * Sends a user's waiting posts in the order written, one at a time. A post sent or refused leaves the
 * outbox; the first that must wait stops the round (what follows it waits too, so a group's posts keep
 * their order). Rounds never overlap: a call while one runs waits for it and then runs again.
 */
export class Outbox {
  private running: Promise<Outcome[]> | null = null;

  constructor(
    private readonly store: Store,
    private readonly send: Send,
    private readonly retryable: Retryable,
    private readonly upload: Upload = () => Promise.reject(new Error('no uploads')),
  ) {}

  async add(p: Pending): Promise<void> {
    await this.store.put(p);
  }

  pending(user: string): Promise<Pending[]> {
    return this.store.pending(user);
  }

  async flush(user: string): Promise<Outcome[]> {
    while (this.running) await this.running.catch(() => undefined);
    this.running = this.round(user);
    try {
      return await this.running;
    } finally {
      this.running = null;
    }
  }

  private async round(user: string): Promise<Outcome[]> {
    const outcomes: Outcome[] = [];
    for (const pending of await this.store.pending(user)) {
      try {
        for (const file of pending.files ?? []) {
          if (file.id) continue;
          file.id = (await this.upload(pending, file)).id;
          // Kept at once: a resend after a lost signal does not upload it again.
          await this.store.put(pending);
        }
        const receipt = await this.send(pending.group, toNewPost(pending));
        await this.store.remove(pending.client_msg_id);
        outcomes.push({ kind: 'sent', pending, receipt });
      } catch (error) {
        if (this.retryable(error)) {
          outcomes.push({ kind: 'waiting', pending, error });
          break;
        }
        await this.store.remove(pending.client_msg_id);
        outcomes.push({ kind: 'refused', pending, error });
      }
    }
    return outcomes;
  }
}
