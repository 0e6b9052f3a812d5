// The one module that speaks HTTP to renkei-server. Every call names its operation as the OpenAPI
// document does (`METHOD /api/v1/...`, checked by the `Operation` type generated from it) and uses the
// generated wire types, so the client cannot drift from the contract without failing `npm run check`.
// The session is the HttpOnly cookie: no token ever passes through script.
import type {
  NewPushSubscription,
  NotificationSettings,
  NotificationsView,
  PushDevice,
  AccessReport,
  CareRecord,
  OfficeRules,
  RecordSummary,
  OfficeRulesList,
  OfficeRulesUpdate,
  AddressedList,
  AdminGroup,
  AdminGroupList,
  Attachment,
  AttachmentLimits,
  AuditList,
  AuditVerification,
  CandidateList,
  ConsentChange,
  ConsentHistory,
  ConsentPreview,
  CreatedUser,
  CreateUserRequest,
  Invitation,
  MemberList,
  OpenGroupRequest,
  Person,
  RecordConsentRequest,
  SessionHistory,
  SetupToken,
  UserList,
  WithdrawConsentRequest,
  Availability,
  EditPost,
  ErrorBody,
  ErrorCode,
  Group,
  GroupList,
  InvitationList,
  LoginRequest,
  LoginResponse,
  NewPost,
  Operation,
  Post,
  PostHistory,
  PostPage,
  PostReceipt,
  SeenList,
  SeenMark,
  SessionList,
  TotpConfirmed,
  TotpEnrollment,
  UnreadList,
  User,
} from './api-types';

/** A refusal or failure the server answered with its typed error body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ErrorBody,
  ) {
    super(`${body.code}: ${body.message}`);
  }
  get code(): ErrorCode {
    return this.body.code;
  }
  /** Worth trying again later with the same request (the server was away, or overloaded). */
  get retryable(): boolean {
    return this.status >= 500 || this.code === 'rate_limited' || this.code === 'too_many_uploads' || this.code === 'unavailable';
  }
}

/** The request never got an answer: no signal, or the server is down. */
export class OfflineError extends Error {
  constructor() {
    super('offline');
  }
}

type Listener = () => void;
const unauthenticatedListeners = new Set<Listener>();

/** Called whenever the server says the session is gone (expired, revoked, logged out elsewhere). */
export function onUnauthenticated(listener: Listener): () => void {
  unauthenticatedListeners.add(listener);
  return () => unauthenticatedListeners.delete(listener);
}

/** Fills `{name}` segments of an operation's path. */
function pathOf(op: Operation, params: Record<string, string | number>): [string, string] {
  const space = op.indexOf(' ');
  const method = op.slice(0, space);
  const path = op.slice(space + 1).replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`missing path parameter ${name}`);
    return encodeURIComponent(String(value));
  });
  return [method, path];
}

export async function call<T>(
  op: Operation,
  params: Record<string, string | number> = {},
  body?: unknown,
  query?: Record<string, string | number | undefined>,
): Promise<T> {
  const [method, path] = pathOf(op, params);
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) search.set(k, String(v));
  const url = search.size ? `${path}?${search}` : path;
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      credentials: 'same-origin',
      cache: 'no-store',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new OfflineError();
  }
  if (response.status === 204) return undefined as T;
  const json: unknown = await response.json().catch(() => undefined);
  if (!response.ok) {
    const error = isErrorBody(json)
      ? new ApiError(response.status, json)
      : new ApiError(response.status, { code: response.status >= 500 ? 'unavailable' : 'malformed_request', message: response.statusText, fields: {} });
    if (error.code === 'unauthenticated' && op !== 'POST /api/v1/auth/login') {
      for (const listener of unauthenticatedListeners) listener();
    }
    throw error;
  }
  return json as T;
}

/**
 * Fetches a file the server makes (an export) and hands it to the browser as a download named
 * `filename`. Refusals arrive as the same typed errors as `call`.
 */
export async function download(
  op: Operation,
  params: Record<string, string | number>,
  query: Record<string, string | number | undefined>,
  filename: string,
): Promise<void> {
  const [, path] = pathOf(op, params);
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') search.set(k, String(v));
  let response: Response;
  try {
    response = await fetch(search.size ? `${path}?${search}` : path, { credentials: 'same-origin', cache: 'no-store' });
  } catch {
    throw new OfflineError();
  }
  if (!response.ok) {
    const json: unknown = await response.json().catch(() => undefined);
    throw isErrorBody(json)
      ? new ApiError(response.status, json)
      : new ApiError(response.status, { code: 'unavailable', message: response.statusText, fields: {} });
  }
  const url = URL.createObjectURL(await response.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/**
 * Uploads a file to a group (`POST /api/v1/groups/{id}/attachments`, the raw bytes as the body),
 * reporting the fraction sent: XMLHttpRequest, because fetch cannot report an upload's progress.
 */
export function upload(group: string, file: Blob, name: string, progress?: (fraction: number) => void): Promise<Attachment> {
  const [, path] = pathOf('POST /api/v1/groups/{id}/attachments', { id: group });
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `${path}?${new URLSearchParams({ name })}`);
    xhr.withCredentials = true;
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && e.total > 0) progress?.(e.loaded / e.total);
    };
    xhr.onerror = () => reject(new OfflineError());
    xhr.ontimeout = () => reject(new OfflineError());
    xhr.onload = () => {
      let json: unknown;
      try {
        json = JSON.parse(xhr.responseText);
      } catch {
        json = undefined;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        progress?.(1);
        resolve(json as Attachment);
        return;
      }
      const error = isErrorBody(json)
        ? new ApiError(xhr.status, json)
        : new ApiError(xhr.status, { code: xhr.status >= 500 ? 'unavailable' : 'malformed_request', message: xhr.statusText, fields: {} });
      if (error.code === 'unauthenticated') for (const listener of unauthenticatedListeners) listener();
      reject(error);
    };
    xhr.send(file);
  });
}

/** Where a shared file (or an image's thumbnail) is fetched from; the session cookie authorises it. */
export function attachmentUrl(group: string, id: string, thumbnail = false): string {
  const op: Operation = thumbnail
    ? 'GET /api/v1/groups/{id}/attachments/{attachment}/thumbnail'
    : 'GET /api/v1/groups/{id}/attachments/{attachment}';
  return pathOf(op, { id: group, attachment: id })[1];
}

function isErrorBody(v: unknown): v is ErrorBody {
  return typeof v === 'object' && v !== null && 'code' in v && 'message' in v;
}

/** The newest page: `before` past any sequence number. */
const NEWEST = Number.MAX_SAFE_INTEGER;

export const api = {
  login: (login: string, password: string, totp_code?: string) =>
    call<LoginResponse>('POST /api/v1/auth/login', {}, { login, password, totp_code, session: 'cookie' } satisfies LoginRequest),
  logout: () => call<void>('POST /api/v1/auth/logout'),
  setup: (setup_token: string, new_password: string) =>
    call<void>('POST /api/v1/auth/setup', {}, { setup_token, new_password }),
  me: () => call<User>('GET /api/v1/me'),
  changePassword: (current_password: string, new_password: string) =>
    call<void>('POST /api/v1/me/password', {}, { current_password, new_password }),
  totpEnroll: () => call<TotpEnrollment>('POST /api/v1/me/totp/enroll'),
  totpConfirm: (code: string) => call<TotpConfirmed>('POST /api/v1/me/totp/confirm', {}, { code }),
  sessions: () => call<SessionList>('GET /api/v1/me/sessions'),
  revokeSession: (id: string) => call<void>('DELETE /api/v1/me/sessions/{id}', { id }),
  availability: () => call<Availability>('GET /api/v1/me/availability'),
  setAvailability: (a: Availability) => call<Availability>('PUT /api/v1/me/availability', {}, a),
  notifications: () => call<NotificationsView>('GET /api/v1/me/notifications'),
  setNotifications: (s: NotificationSettings) => call<NotificationsView>('PUT /api/v1/me/notifications', {}, s),
  addPushDevice: (s: NewPushSubscription) => call<PushDevice>('POST /api/v1/me/notifications/devices', {}, s),
  removePushDevice: (id: string) => call<void>('DELETE /api/v1/me/notifications/devices/{id}', { id }),

  groups: () => call<GroupList>('GET /api/v1/groups'),
  group: (id: string) => call<Group>('GET /api/v1/groups/{id}', { id }),
  unread: () => call<UnreadList>('GET /api/v1/unread'),
  addressed: () => call<AddressedList>('GET /api/v1/addressed'),
  invitations: () => call<InvitationList>('GET /api/v1/invitations'),
  acceptInvitation: (id: string) => call<unknown>('POST /api/v1/invitations/{id}/accept', { id }),
  declineInvitation: (id: string) => call<unknown>('POST /api/v1/invitations/{id}/decline', { id }),

  newestPosts: (id: string, limit = 50) =>
    call<PostPage>('GET /api/v1/groups/{id}/posts', { id }, undefined, { before: NEWEST, limit }),
  postsBefore: (id: string, before: number, limit = 50) =>
    call<PostPage>('GET /api/v1/groups/{id}/posts', { id }, undefined, { before, limit }),
  postsAfter: (id: string, after: number, limit = 500) =>
    call<PostPage>('GET /api/v1/groups/{id}/posts', { id }, undefined, { after, limit }),
  post: (id: string, post: NewPost) => call<PostReceipt>('POST /api/v1/groups/{id}/posts', { id }, post),
  attachmentLimits: () => call<AttachmentLimits>('GET /api/v1/attachments/limits'),
  edit: (id: string, seq: number, edit: EditPost) =>
    call<Post>('PATCH /api/v1/groups/{id}/posts/{seq}', { id, seq }, edit),
  history: (id: string, seq: number) => call<PostHistory>('GET /api/v1/groups/{id}/posts/{seq}/history', { id, seq }),
  seen: (id: string, seq: number) => call<SeenMark>('POST /api/v1/groups/{id}/posts/{seq}/seen', { id, seq }),
  seenBy: (id: string, seq: number) => call<SeenList>('GET /api/v1/groups/{id}/posts/{seq}/seen', { id, seq }),
  markRead: (id: string, seq: number) => call<unknown>('POST /api/v1/groups/{id}/read', { id }, { seq }),
  reauthenticate: (password: string, totp_code?: string) =>
    call<void>('POST /api/v1/auth/reauthenticate', {}, { password, totp_code }),

  // The attending physician's care team.
  openGroup: (req: OpenGroupRequest) => call<Group>('POST /api/v1/groups', {}, req),
  lookup: (user: string) => call<Person>('GET /api/v1/users/{user}', { user }),
  members: (id: string) => call<MemberList>('GET /api/v1/groups/{id}/members', { id }),
  groupInvitations: (id: string) => call<InvitationList>('GET /api/v1/groups/{id}/invitations', { id }),
  candidates: (id: string, q: string, profession?: string) =>
    call<CandidateList>('GET /api/v1/groups/{id}/candidates', { id }, undefined, { q, profession: profession || undefined }),
  invite: (id: string, user: string) => call<Invitation>('POST /api/v1/groups/{id}/invitations', { id }, { user }),
  removeMember: (id: string, user: string) => call<void>('DELETE /api/v1/groups/{id}/members/{user}', { id, user }),
  consents: (id: string) => call<ConsentHistory>('GET /api/v1/groups/{id}/consents', { id }),
  previewConsent: (id: string, req: RecordConsentRequest) =>
    call<ConsentPreview>('POST /api/v1/groups/{id}/consents/preview', { id }, req),
  recordConsent: (id: string, req: RecordConsentRequest) =>
    call<ConsentChange>('POST /api/v1/groups/{id}/consents', { id }, req),
  withdrawConsent: (id: string, req: WithdrawConsentRequest) =>
    call<ConsentChange>('POST /api/v1/groups/{id}/consents/withdraw', { id }, req),
  handover: (id: string, user: string) => call<Group>('POST /api/v1/groups/{id}/handover', { id }, { user }),
  acceptHandover: (id: string) => call<Group>('POST /api/v1/groups/{id}/handover/accept', { id }),
  declineHandover: (id: string) => call<Group>('POST /api/v1/groups/{id}/handover/decline', { id }),
  archive: (id: string) => call<Group>('POST /api/v1/groups/{id}/archive', { id }),
  accessReport: (id: string) => call<AccessReport>('GET /api/v1/groups/{id}/access-report', { id }),
  exportTimeline: (id: string, format: 'json' | 'markdown', filename: string) =>
    download('GET /api/v1/groups/{id}/export', { id }, { format }, filename),
  recordSummary: (month: string) => call<RecordSummary>('GET /api/v1/records/{month}', { month }),
  careRecord: (id: string, month: string) => call<CareRecord>('GET /api/v1/groups/{id}/records/{month}', { id, month }),
  saveCareRecord: (id: string, month: string, format: 'csv' | 'html', filename: string) =>
    download('GET /api/v1/groups/{id}/records/{month}', { id, month }, { format }, filename),

  // The ICT desk.
  users: () => call<UserList>('GET /api/v1/admin/users'),
  createUser: (req: CreateUserRequest) => call<CreatedUser>('POST /api/v1/admin/users', {}, req),
  disableUser: (user: string) => call<User>('POST /api/v1/admin/users/{user}/disable', { user }),
  enableUser: (user: string) => call<User>('POST /api/v1/admin/users/{user}/enable', { user }),
  newSetupToken: (user: string) => call<SetupToken>('POST /api/v1/admin/users/{user}/setup-token', { user }),
  resetTotp: (user: string) => call<User>('POST /api/v1/admin/users/{user}/totp/reset', { user }),
  userSessions: (user: string) => call<SessionHistory>('GET /api/v1/admin/users/{user}/sessions', { user }),
  adminGroups: () => call<AdminGroupList>('GET /api/v1/admin/groups'),
  offices: () => call<OfficeRulesList>('GET /api/v1/admin/offices'),
  setOfficeRules: (organisation: string, rules: OfficeRulesUpdate) =>
    call<OfficeRules>('PUT /api/v1/admin/offices/{organisation}', { organisation }, rules),
  createCommunityGroup: (label: string) => call<AdminGroup>('POST /api/v1/admin/community-groups', {}, { label }),
  addCommunityMember: (id: string, user: string) =>
    call<void>('POST /api/v1/admin/community-groups/{id}/members', { id }, { user }),
  removeCommunityMember: (id: string, user: string) =>
    call<void>('DELETE /api/v1/admin/community-groups/{id}/members/{user}', { id, user }),
  audit: (filter: AuditFilter) => call<AuditList>('GET /api/v1/admin/audit', {}, undefined, clean(filter)),
  exportAudit: (filter: AuditFilter, format: 'csv' | 'json', filename: string) =>
    download('GET /api/v1/admin/audit/export', {}, { ...clean(filter), format }, filename),
  verifyAudit: (anchor?: string) =>
    call<AuditVerification>('GET /api/v1/admin/audit/verification', {}, undefined, { anchor: anchor || undefined }),
};

/** The audit log's filters, as the console's form holds them (empty = any). */
export type AuditFilter = { user?: string; group?: string; action?: string; from?: string; to?: string; limit?: number };

function clean(filter: AuditFilter): Record<string, string | number | undefined> {
  const out: Record<string, string | number | undefined> = {};
  for (const [k, v] of Object.entries(filter)) if (v !== undefined && v !== '') out[k] = v;
  return out;
}
