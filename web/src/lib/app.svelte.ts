// The client's state: who is signed in, the groups with their unread counts, the open timelines, the
// outbox and the live connection. Screens read it and call its methods; only api.ts talks HTTP.
import { api, ApiError, OfflineError, onUnauthenticated, upload } from './api';
import type { CarePolicy, GroupSummary, Invitation, PendingStep, Post, PostKind, ServerFrame, User } from './api-types';
import { Live, type LiveStatus } from './live';
import { newClientMsgId, Outbox, Store, type Outcome, type Pending, type PendingFile } from './outbox';
import { t } from './i18n';

/** How long a sent-but-unread timeline waits before telling the server how far it was read. */
const READ_MARK_DELAY_MS = 800;

export function retryable(error: unknown): boolean {
  return error instanceof OfflineError || (error instanceof ApiError && error.retryable);
}

/** One group's timeline as this device has it: a contiguous run of posts, oldest first. */
export class Timeline {
  /** Immutable posts, replaced whole: no deep proxy over thousands of them. */
  posts = $state.raw<Post[]>([]);
  /** 見ました per sequence number (who), as far as loaded or heard live. */
  seen = $state<Record<number, { id: string; name: string }[]>>({});
  /** Sequence numbers whose whole 見ました list was read from the server. */
  seenLoaded = $state<Record<number, boolean>>({});
  /** No earlier post exists than the first one loaded. */
  atStart = $state(false);
  /** The user is no longer an active member: the page shows so and stops. */
  removed = $state(false);
  loading = $state(false);

  constructor(readonly group: string) {}

  get last(): number {
    return this.posts.at(-1)?.seq ?? 0;
  }

  /** Adds or replaces posts by sequence number; keeps the run sorted and without duplicates. */
  merge(incoming: Post[]): void {
    if (!incoming.length) return;
    const first = this.posts[0]?.seq;
    const last = this.posts.at(-1)?.seq;
    const sorted = incoming.every((p, i) => i === 0 || p.seq > incoming[i - 1]!.seq);
    // The two common cases without touching the posts already there: an older page in front, new posts
    // at the end (paging back through 10,000 posts stays a few milliseconds a page).
    if (sorted && first !== undefined && incoming.at(-1)!.seq < first) {
      this.posts = [...incoming, ...this.posts];
      return;
    }
    if (sorted && (last === undefined || incoming[0]!.seq > last)) {
      this.posts = [...this.posts, ...incoming];
      return;
    }
    const bySeq = new Map(this.posts.map((p) => [p.seq, p]));
    for (const p of incoming) bySeq.set(p.seq, p);
    this.posts = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  }
}

export class App {
  user = $state<User | null>(null);
  /** What the session must do before anything else (change the initial password, enrol TOTP). */
  pendingStep = $state<PendingStep | null>(null);
  status = $state<LiveStatus>('connecting');
  groups = $state<GroupSummary[]>([]);
  unread = $state<Record<string, number>>({});
  addressed = $state<Post[]>([]);
  invitations = $state<Invitation[]>([]);
  /** Posts waiting in the outbox, for every group of the user. */
  pending = $state<Pending[]>([]);
  /** How far the current file of each waiting post is uploaded (0–1), by client message id. */
  uploads = $state<Record<string, number>>({});
  /** A message for the sign-in page (e.g. why the session ended). */
  notice = $state<string | null>(null);
  timelines: Record<string, Timeline> = {};
  /** An administrator's action waiting for the password to be entered again (the Reauth dialog). */
  reauth = $state<{ resolve: (ok: boolean) => void } | null>(null);
  /** Refusals of posts sent from the outbox while their composer was not waiting for them. */
  refusals = $state<{ pending: Pending; error: ApiError }[]>([]);

  private live: Live | null = null;
  private outbox: Outbox | null = null;
  private store: Store | null = null;
  private readTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private retryTimer: ReturnType<typeof setInterval> | null = null;

  constructor() {
    onUnauthenticated(() => this.sessionEnded());
    if (typeof window !== 'undefined') {
      window.addEventListener('online', () => {
        this.live?.wake();
        void this.flush();
      });
    }
  }

  /**
   * Runs an administrator's action. When the server answers that the sign-in is too old, the Reauth
   * dialog asks for the password (and TOTP code), and the action runs once more; cancelling rethrows.
   */
  async recent<T>(action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 'reauthentication_required')) throw e;
      const ok = await new Promise<boolean>((resolve) => (this.reauth = { resolve }));
      this.reauth = null;
      if (!ok) throw e;
      return action();
    }
  }

  /** Restores a session the browser still holds (the cookie), if any. */
  async resume(): Promise<void> {
    try {
      const me = await api.me();
      await this.signedIn(me);
    } catch (e) {
      if (e instanceof OfflineError) this.notice = t('server-error');
      if (e instanceof ApiError && e.code === 'totp_enrollment_required') this.pendingStep = 'enroll_totp';
    }
  }

  async signedIn(user: User, pending: PendingStep | null = null): Promise<void> {
    this.user = user;
    this.notice = null;
    this.pendingStep = user.must_change_password ? 'change_password' : pending;
    if (this.pendingStep) return;
    this.store ??= await Store.open();
    this.outbox = new Outbox(this.store, (group, post) => api.post(group, post), retryable, (pending, file) =>
      upload(pending.group, file.blob, file.name, (fraction) => {
        this.uploads = { ...this.uploads, [pending.client_msg_id]: fraction };
      }),
    );
    await this.refresh();
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.live?.stop();
    this.live = new Live(`${scheme}//${location.host}/api/v1/ws`, {
      frame: (f) => this.onFrame(f),
      status: (s) => {
        this.status = s;
        if (s === 'online') void this.flush();
      },
      sessionEnded: () => this.sessionEnded(),
    });
    for (const g of this.groups) {
      const u = this.unreadOf(g.id);
      this.live.follow(g.id, u);
    }
    this.live.start();
    await this.loadPending();
    this.retryTimer ??= setInterval(() => {
      if (this.pending.length) void this.flush();
    }, 10_000);
  }

  private lastSeqs: Record<string, number> = {};
  private unreadOf(group: string): number {
    return this.lastSeqs[group] ?? 0;
  }

  /** Groups, unread counts, questions addressed to me, invitations. */
  async refresh(): Promise<void> {
    const [groups, unread, addressed, invitations] = await Promise.all([
      api.groups(),
      api.unread(),
      api.addressed(),
      api.invitations(),
    ]);
    this.groups = groups.groups;
    const counts: Record<string, number> = {};
    for (const u of unread.groups) {
      counts[u.group_id] = u.unread;
      this.lastSeqs[u.group_id] = u.last_seq;
    }
    this.unread = counts;
    this.addressed = addressed.posts;
    this.invitations = invitations.invitations.filter((i) => i.state === 'invited');
    for (const g of this.groups) this.live?.follow(g.id, this.lastSeqs[g.id] ?? 0);
  }

  async accept(invitation: string): Promise<void> {
    await api.acceptInvitation(invitation);
    await this.refresh();
  }

  async decline(invitation: string): Promise<void> {
    await api.declineInvitation(invitation);
    await this.refresh();
  }

  /** The signed-in user ends this session on purpose: what this device holds of their text goes too. */
  async logout(): Promise<void> {
    try {
      await api.logout();
    } catch {
      // The session may already be over; signing out locally is what matters.
    }
    await this.store?.clear();
    this.reset(null);
  }

  sessionEnded(): void {
    if (!this.user) return;
    this.reset(t('session-ended'));
  }

  private reset(notice: string | null): void {
    this.live?.stop();
    this.live = null;
    if (this.retryTimer) clearInterval(this.retryTimer);
    this.retryTimer = null;
    this.user = null;
    this.pendingStep = null;
    this.groups = [];
    this.unread = {};
    this.pending = [];
    this.timelines = {};
    this.notice = notice;
    location.hash = '#/login';
  }

  timeline(group: string): Timeline {
    this.timelines[group] ??= new Timeline(group);
    return this.timelines[group];
  }

  /** Opens a group's timeline: the newest page, then live from its end. */
  async open(group: string): Promise<Timeline> {
    const tl = this.timeline(group);
    tl.loading = true;
    try {
      const page = await api.newestPosts(group);
      const pageFirst = page.posts[0]?.seq;
      // The run kept from an earlier visit must join the newest page without a gap; if it does not, it
      // goes, and paging back reads it again.
      if (pageFirst !== undefined && pageFirst > tl.last + 1) {
        tl.posts = [];
        tl.atStart = false;
      }
      tl.merge(page.posts);
      tl.atStart = tl.atStart || page.posts.length === 0 || pageFirst === 1;
      this.live?.follow(group, tl.last);
      // Posts that arrived live before the page was read and are not in it yet.
      if (this.live && this.live.position(group) > tl.last) {
        const rest = await api.postsAfter(group, tl.last);
        tl.merge(rest.posts);
      }
    } catch (e) {
      if (e instanceof ApiError && e.code === 'not_found') tl.removed = true;
      else throw e;
    } finally {
      tl.loading = false;
    }
    return tl;
  }

  /** Pages back: the posts just before the first one shown. */
  async older(group: string): Promise<void> {
    const tl = this.timeline(group);
    const first = tl.posts[0]?.seq;
    if (tl.atStart || first === undefined || tl.loading) return;
    tl.loading = true;
    try {
      const page = await api.postsBefore(group, first);
      tl.merge(page.posts);
      if (!page.posts.length || page.posts[0]?.seq === 1) tl.atStart = true;
    } finally {
      tl.loading = false;
    }
  }

  /** The timeline is on screen up to `seq`: tell the server (once things settle) how far it was read. */
  readUpTo(group: string, seq: number): void {
    if ((this.unread[group] ?? 0) === 0 && seq <= (this.readSeqs[group] ?? 0)) return;
    const timer = this.readTimers.get(group);
    if (timer) clearTimeout(timer);
    this.readTimers.set(
      group,
      setTimeout(() => {
        this.readTimers.delete(group);
        this.readSeqs[group] = seq;
        this.unread = { ...this.unread, [group]: 0 };
        api.markRead(group, seq).catch(() => undefined);
      }, READ_MARK_DELAY_MS),
    );
  }
  private readSeqs: Record<string, number> = {};

  /** Writes a post into the outbox, then tries to send it. Returns the post's fate when it was tried. */
  async write(
    group: string,
    kind: PostKind,
    body: string,
    confirm = false,
    replyTo: number | null = null,
    id?: string,
    files: PendingFile[] = [],
    carePolicy: CarePolicy | null = null,
  ): Promise<Outcome | null> {
    if (!this.user || !this.outbox) return null;
    const pending: Pending = {
      client_msg_id: id ?? newClientMsgId(),
      user: this.user.id,
      group,
      kind,
      body,
      reply_to: replyTo,
      confirm_not_emergency: confirm,
      created: Date.now(),
      files,
      care_policy: carePolicy,
    };
    await this.outbox.add(pending);
    await this.loadPending();
    const outcomes = await this.flush(pending.client_msg_id);
    return outcomes.find((o) => o.pending.client_msg_id === pending.client_msg_id) ?? null;
  }

  /** Sends what waits in the outbox; refusals of posts no composer is waiting for (`awaited`) are kept
   * to show in their timeline, with their text. */
  async flush(awaited?: string): Promise<Outcome[]> {
    if (!this.user || !this.outbox) return [];
    const outcomes = await this.outbox.flush(this.user.id);
    for (const o of outcomes) {
      if (o.kind === 'sent') this.timelines[o.pending.group]?.merge([o.receipt.post]);
      if (o.kind === 'refused' && o.error instanceof ApiError && o.pending.client_msg_id !== awaited) this.refusals = [...this.refusals, { pending: o.pending, error: o.error }];
    }
    await this.loadPending();
    return outcomes;
  }

  dismissRefusal(id: string): void {
    this.refusals = this.refusals.filter((r) => r.pending.client_msg_id !== id);
  }

  private async loadPending(): Promise<void> {
    if (this.user && this.outbox) this.pending = await this.outbox.pending(this.user.id);
  }

  draft(group: string) {
    return this.store?.draft(`${this.user?.id}:${group}`);
  }

  saveDraft(group: string, body: string, kind: PostKind): void {
    void this.store?.saveDraft({ key: `${this.user?.id}:${group}`, body, kind });
  }

  async markSeen(group: string, seq: number): Promise<void> {
    const mark = await api.seen(group, seq);
    this.addSeen(group, seq, mark.by.id, mark.by.display_name);
  }

  async loadSeen(group: string, seq: number): Promise<void> {
    const list = await api.seenBy(group, seq);
    const tl = this.timeline(group);
    tl.seen = { ...tl.seen, [seq]: list.seen.map((m) => ({ id: m.by.id, name: m.by.display_name })) };
    tl.seenLoaded = { ...tl.seenLoaded, [seq]: true };
  }

  private addSeen(group: string, seq: number, id: string, name: string): void {
    const tl = this.timeline(group);
    const marks = tl.seen[seq] ?? [];
    if (!marks.some((m) => m.id === id)) tl.seen = { ...tl.seen, [seq]: [...marks, { id, name }] };
  }

  private onFrame(frame: ServerFrame): void {
    switch (frame.type) {
      case 'post': {
        const p = frame.post;
        this.lastSeqs[p.group_id] = Math.max(this.lastSeqs[p.group_id] ?? 0, p.seq);
        const tl = this.timelines[p.group_id];
        tl?.merge([p]);
        if (p.author.id !== this.user?.id) this.unread = { ...this.unread, [p.group_id]: (this.unread[p.group_id] ?? 0) + 1 };
        if (p.kind !== 'update' && p.author.id !== this.user?.id) void api.addressed().then((a) => (this.addressed = a.posts)).catch(() => undefined);
        break;
      }
      case 'post_updated':
        this.timelines[frame.post.group_id]?.merge([frame.post]);
        break;
      case 'seen':
        this.addSeen(frame.mark.group_id, frame.mark.seq, frame.mark.by.id, frame.mark.by.display_name);
        break;
      case 'membership_changed': {
        const tl = this.timelines[frame.group_id];
        if (tl) tl.removed = true;
        this.groups = this.groups.filter((g) => g.id !== frame.group_id);
        break;
      }
      default:
        break;
    }
  }
}

export const app = new App();
