//! [`Client`]: one method per API operation, each returning the protocol's typed response or a
//! [`ClientError`] carrying the server's typed error body.

use std::path::Path;
use std::time::Duration;

use renkei_protocol::{
    API_PREFIX, AdminGroup, AdminGroupList, ChangePasswordRequest, ConsentChange, ConsentHistory,
    CreateCommunityGroupRequest, CreateUserRequest, CreatedUser, ErrorBody, Group, GroupList, Invitation,
    InvitationList, LoginRequest, LoginResponse, MemberList, OpenGroupRequest, RecordConsentRequest, Sensitive,
    SessionList, SessionTransport, SetupPasswordRequest, SetupToken, TotpCode, TotpConfirmed, TotpEnrollment, User,
    UserList, UserRef, WithdrawConsentRequest,
};
use renkei_protocol::{
    AddressedList, Availability, EditPost, NewPost, Post, PostHistory, PostPage, PostReceipt, ReadMark, SeenList,
    SeenMark, UnreadList,
};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use uuid::Uuid;

/// What to look for in the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditSearch {
    pub user: Option<Uuid>,
    pub group: Option<Uuid>,
    pub action: Option<String>,
    /// Inclusive.
    pub from: Option<OffsetDateTime>,
    /// Exclusive.
    pub to: Option<OffsetDateTime>,
    pub newest_first: bool,
    pub limit: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a typed error.
    #[error("{} ({}): {}", body.code, status, body.message)]
    Api { status: u16, body: ErrorBody },
    /// The server could not be reached, or the TLS handshake failed.
    #[error("cannot reach the server: {0}")]
    Transport(#[source] reqwest::Error),
    /// The server answered something that is not the expected type.
    #[error("unexpected answer from the server (HTTP {status}): {detail}")]
    Unexpected { status: u16, detail: String },
    #[error("{0}")]
    Setup(String),
    /// The live connection failed or closed.
    #[error("live connection: {0}")]
    Live(String),
}

impl ClientError {
    /// The server's error code, when the server answered with one.
    pub fn code(&self) -> Option<renkei_protocol::ErrorCode> {
        match self {
            Self::Api { body, .. } => Some(body.code),
            _ => None,
        }
    }
}

/// Told how much of a response body has arrived: bytes so far, and the total when the server said it.
pub type Progress = std::sync::Arc<dyn Fn(u64, Option<u64>) + Send + Sync>;

/// A connection to one renkei server, optionally logged in.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<Sensitive>,
    ca_cert: Option<std::path::PathBuf>,
    progress: Option<Progress>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).field("logged_in", &self.token.is_some()).finish()
    }
}

impl Client {
    /// A client for `base_url` (`https://host:port`). `ca_cert` is a PEM file of roots to trust instead of
    /// the system's, for a self-signed or private CA certificate.
    pub fn new(base_url: &str, ca_cert: Option<&Path>) -> Result<Self, ClientError> {
        // One crypto provider for the whole process; a second install is harmless and ignored.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .tls_backend_rustls()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("renkei-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| ClientError::Setup(format!("cannot read CA certificate {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ClientError::Setup(format!("invalid CA certificate {}: {e}", path.display())))?;
            builder = builder.tls_certs_only(certs);
        }
        let http = builder.build().map_err(|e| ClientError::Setup(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: base_url.trim_end_matches('/').to_owned(),
            token: None,
            ca_cert: ca_cert.map(std::path::Path::to_path_buf),
            progress: None,
        })
    }

    pub fn with_token(mut self, token: Sensitive) -> Self {
        self.token = Some(token);
        self
    }

    /// Reports the progress of every response body this client downloads (exports, audit queries, long
    /// histories): the CLI draws a progress bar with it.
    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Reads a response body, reporting progress as it arrives.
    async fn body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, ClientError> {
        let total = response.content_length();
        let mut body = Vec::with_capacity(total.unwrap_or(0).min(64 << 20) as usize);
        while let Some(chunk) = response.chunk().await.map_err(ClientError::Transport)? {
            body.extend_from_slice(&chunk);
            if let Some(progress) = &self.progress {
                progress(body.len() as u64, total);
            }
        }
        // Done: received equals total, also when the server did not say the length.
        if let Some(progress) = &self.progress {
            progress(body.len() as u64, Some(body.len() as u64));
        }
        Ok(body)
    }

    /// The same server and connection pool, not logged in.
    pub fn without_token(mut self) -> Self {
        self.token = None;
        self
    }

    /// The same session on another node of the same region (another base URL, same CA).
    pub fn on_node(&self, base_url: &str) -> Self {
        Self { base: base_url.trim_end_matches('/').to_owned(), ..self.clone() }
    }

    pub fn token(&self) -> Option<&Sensitive> {
        self.token.as_ref()
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn ca_cert(&self) -> Option<&std::path::Path> {
        self.ca_cert.as_deref()
    }

    async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let response = self.send(method, path, body).await?;
        let status = response.status();
        let bytes = self.body(response).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Unexpected { status: status.as_u16(), detail: e.to_string() })
    }

    async fn call_empty<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(), ClientError> {
        self.send(method, path, body).await.map(drop)
    }

    /// Sends a request and turns any non-success answer into [`ClientError::Api`].
    async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut request = self.http.request(method, format!("{}{API_PREFIX}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Self::answer(request.send().await.map_err(ClientError::Transport)?).await
    }

    /// A response as it is when successful; otherwise its typed error.
    async fn answer(response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let bytes = response.bytes().await.map_err(ClientError::Transport)?;
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(ClientError::Api { status: status.as_u16(), body }),
            Err(_) => Err(ClientError::Unexpected {
                status: status.as_u16(),
                detail: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            }),
        }
    }

    /// Logs in; on success the client carries the new session's token.
    pub async fn login(
        &mut self,
        login: &str,
        password: &Sensitive,
        totp_code: Option<&str>,
    ) -> Result<LoginResponse, ClientError> {
        let req = LoginRequest {
            login: login.to_owned(),
            password: password.clone(),
            totp_code: totp_code.map(str::to_owned),
            session: SessionTransport::Bearer,
        };
        let response: LoginResponse = self.call(Method::POST, "/auth/login", Some(&req)).await?;
        let token = response.token.clone().ok_or_else(|| ClientError::Unexpected {
            status: 200,
            detail: "the login answer carries no token".into(),
        })?;
        self.token = Some(token);
        Ok(response)
    }

    pub async fn logout(&mut self) -> Result<(), ClientError> {
        self.call_empty::<()>(Method::POST, "/auth/logout", None).await?;
        self.token = None;
        Ok(())
    }

    pub async fn setup_password(&self, setup_token: &Sensitive, new_password: &Sensitive) -> Result<(), ClientError> {
        let req = SetupPasswordRequest { setup_token: setup_token.clone(), new_password: new_password.clone() };
        self.call_empty(Method::POST, "/auth/setup", Some(&req)).await
    }

    pub async fn me(&self) -> Result<User, ClientError> {
        self.call::<(), _>(Method::GET, "/me", None).await
    }

    pub async fn change_password(&self, current: &Sensitive, new: &Sensitive) -> Result<(), ClientError> {
        let req = ChangePasswordRequest { current_password: current.clone(), new_password: new.clone() };
        self.call_empty(Method::POST, "/me/password", Some(&req)).await
    }

    pub async fn totp_enroll(&self) -> Result<TotpEnrollment, ClientError> {
        self.call::<(), _>(Method::POST, "/me/totp/enroll", None).await
    }

    /// Turns TOTP on; the answer holds the recovery codes, shown this once.
    pub async fn totp_confirm(&self, code: &str) -> Result<TotpConfirmed, ClientError> {
        self.call(Method::POST, "/me/totp/confirm", Some(&TotpCode { code: code.to_owned() })).await
    }

    pub async fn sessions(&self) -> Result<SessionList, ClientError> {
        self.call::<(), _>(Method::GET, "/me/sessions", None).await
    }

    pub async fn revoke_session(&self, id: Uuid) -> Result<(), ClientError> {
        self.call_empty::<()>(Method::DELETE, &format!("/me/sessions/{id}"), None).await
    }

    pub async fn admin_create_user(&self, req: &CreateUserRequest) -> Result<CreatedUser, ClientError> {
        self.call(Method::POST, "/admin/users", Some(req)).await
    }

    pub async fn admin_list_users(&self) -> Result<UserList, ClientError> {
        self.call::<(), _>(Method::GET, "/admin/users", None).await
    }

    /// `user` is an id or a login.
    pub async fn admin_show_user(&self, user: &str) -> Result<User, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/admin/users/{}", path_segment(user)), None).await
    }

    pub async fn admin_disable_user(&self, user: &str) -> Result<User, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/admin/users/{}/disable", path_segment(user)), None).await
    }

    pub async fn admin_enable_user(&self, user: &str) -> Result<User, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/admin/users/{}/enable", path_segment(user)), None).await
    }

    /// Resets a lost authenticator: TOTP off, recovery codes gone, every session ended.
    pub async fn admin_reset_totp(&self, user: &str) -> Result<User, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/admin/users/{}/totp/reset", path_segment(user)), None).await
    }

    pub async fn admin_new_setup_token(&self, user: &str) -> Result<SetupToken, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/admin/users/{}/setup-token", path_segment(user)), None).await
    }
}

/// Care teams: patient groups, consent, invitations, membership; administrators' audit and community groups.
impl Client {
    pub async fn open_group(&self, req: &OpenGroupRequest) -> Result<Group, ClientError> {
        self.call(Method::POST, "/groups", Some(req)).await
    }

    pub async fn groups(&self) -> Result<GroupList, ClientError> {
        self.call::<(), _>(Method::GET, "/groups", None).await
    }

    pub async fn group(&self, id: Uuid) -> Result<Group, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/groups/{id}"), None).await
    }

    pub async fn members(&self, id: Uuid) -> Result<MemberList, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/groups/{id}/members"), None).await
    }

    pub async fn record_consent(&self, id: Uuid, req: &RecordConsentRequest) -> Result<ConsentChange, ClientError> {
        self.call(Method::POST, &format!("/groups/{id}/consents"), Some(req)).await
    }

    pub async fn withdraw_consent(&self, id: Uuid, req: &WithdrawConsentRequest) -> Result<ConsentChange, ClientError> {
        self.call(Method::POST, &format!("/groups/{id}/consents/withdraw"), Some(req)).await
    }

    pub async fn consents(&self, id: Uuid) -> Result<ConsentHistory, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/groups/{id}/consents"), None).await
    }

    /// `user` is an id or a login.
    pub async fn invite(&self, id: Uuid, user: &str) -> Result<Invitation, ClientError> {
        self.call(Method::POST, &format!("/groups/{id}/invitations"), Some(&UserRef { user: user.to_owned() })).await
    }

    pub async fn invitations(&self) -> Result<InvitationList, ClientError> {
        self.call::<(), _>(Method::GET, "/invitations", None).await
    }

    pub async fn accept_invitation(&self, invitation: Uuid) -> Result<Group, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/invitations/{invitation}/accept"), None).await
    }

    pub async fn decline_invitation(&self, invitation: Uuid) -> Result<(), ClientError> {
        self.call_empty::<()>(Method::POST, &format!("/invitations/{invitation}/decline"), None).await
    }

    pub async fn remove_member(&self, id: Uuid, user: &str) -> Result<(), ClientError> {
        self.call_empty::<()>(Method::DELETE, &format!("/groups/{id}/members/{}", path_segment(user)), None).await
    }

    pub async fn leave(&self, id: Uuid) -> Result<(), ClientError> {
        self.call_empty::<()>(Method::POST, &format!("/groups/{id}/leave"), None).await
    }

    pub async fn handover(&self, id: Uuid, to: &str) -> Result<Group, ClientError> {
        self.call(Method::POST, &format!("/groups/{id}/handover"), Some(&UserRef { user: to.to_owned() })).await
    }

    pub async fn answer_handover(&self, id: Uuid, accept: bool) -> Result<Group, ClientError> {
        let verb = if accept { "accept" } else { "decline" };
        self.call::<(), _>(Method::POST, &format!("/groups/{id}/handover/{verb}"), None).await
    }

    pub async fn archive(&self, id: Uuid) -> Result<Group, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/groups/{id}/archive"), None).await
    }

    /// A registered professional, by id or login.
    pub async fn lookup_user(&self, user: &str) -> Result<renkei_protocol::Person, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/users/{}", path_segment(user)), None).await
    }

    /// The timeline for the medical record, as JSON (attending physician).
    pub async fn export_timeline(&self, group: Uuid) -> Result<renkei_protocol::TimelineExport, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/groups/{group}/export"), None).await
    }

    /// Uploads a file to a group (to be named by a post), reporting the bytes sent to `progress`.
    pub async fn upload_attachment(
        &self,
        group: Uuid,
        name: &str,
        bytes: Vec<u8>,
        progress: Option<Progress>,
    ) -> Result<renkei_protocol::Attachment, ClientError> {
        use futures_util::StreamExt;
        let total = bytes.len() as u64;
        // A file past the limit is refused here, as the server would: not after megabytes were sent.
        let limits = self.attachment_limits().await?;
        if total > limits.max_bytes {
            let body = ErrorBody::new(renkei_protocol::ErrorCode::PayloadTooLarge, "the file is too large")
                .with_field("limit_bytes", limits.max_bytes.to_string());
            return Err(ClientError::Api { status: 413, body });
        }
        let chunks: Vec<Vec<u8>> = bytes.chunks(64 * 1024).map(<[u8]>::to_vec).collect();
        let mut sent = 0u64;
        let stream = futures_util::stream::iter(chunks).map(move |chunk| {
            sent += chunk.len() as u64;
            if let Some(progress) = &progress {
                progress(sent, Some(total));
            }
            Ok::<_, std::io::Error>(chunk)
        });
        let url = reqwest::Url::parse_with_params(
            &format!("{}{API_PREFIX}/groups/{group}/attachments", self.base),
            &[("name", name)],
        )
        .map_err(|e| ClientError::Unexpected { status: 0, detail: e.to_string() })?;
        let mut request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, total)
            .body(reqwest::Body::wrap_stream(stream));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        let response = Self::answer(request.send().await.map_err(ClientError::Transport)?).await?;
        let status = response.status().as_u16();
        let bytes = self.body(response).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Unexpected { status, detail: e.to_string() })
    }

    /// What the server accepts as attachments.
    pub async fn attachment_limits(&self) -> Result<renkei_protocol::AttachmentLimits, ClientError> {
        self.call::<(), _>(Method::GET, "/attachments/limits", None).await
    }

    /// A file's bytes (or its thumbnail's), with its name as the server gave it.
    pub async fn attachment(
        &self,
        group: Uuid,
        id: Uuid,
        thumbnail: bool,
    ) -> Result<(Vec<u8>, Option<String>), ClientError> {
        let suffix = if thumbnail { "/thumbnail" } else { "" };
        let response = self.send::<()>(Method::GET, &format!("/groups/{group}/attachments/{id}{suffix}"), None).await?;
        let name = response
            .headers()
            .get(reqwest::header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once("filename*=UTF-8''"))
            .and_then(|(_, encoded)| percent_decode(encoded));
        Ok((self.body(response).await?, name))
    }

    /// The timeline as a readable Markdown document, in Japanese.
    pub async fn export_timeline_markdown(&self, group: Uuid) -> Result<String, ClientError> {
        self.export_timeline_markdown_in(group, "ja").await
    }

    /// The timeline as a readable Markdown document in `language` (`ja` or `en`).
    pub async fn export_timeline_markdown_in(&self, group: Uuid, language: &str) -> Result<String, ClientError> {
        let path = format!("{}{API_PREFIX}/groups/{group}/export?format=markdown", self.base);
        let mut request = self.http.get(path).header(reqwest::header::ACCEPT_LANGUAGE, language);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token.expose());
        }
        let response = Self::answer(request.send().await.map_err(ClientError::Transport)?).await?;
        let status = response.status().as_u16();
        String::from_utf8(self.body(response).await?)
            .map_err(|e| ClientError::Unexpected { status, detail: e.to_string() })
    }

    /// Every office with rules of its own (administrators).
    pub async fn admin_offices(&self) -> Result<renkei_protocol::OfficeRulesList, ClientError> {
        self.call::<(), _>(Method::GET, "/admin/offices", None).await
    }

    /// Sets an office's rules (administrators).
    pub async fn admin_set_office_rules(
        &self,
        organisation: &str,
        rules: &renkei_protocol::OfficeRulesUpdate,
    ) -> Result<renkei_protocol::OfficeRules, ClientError> {
        self.call(Method::PUT, &format!("/admin/offices/{}", path_segment(organisation)), Some(rules)).await
    }

    /// A patient group's care record of a month (`YYYY-MM`; attending physician).
    pub async fn care_record(&self, group: Uuid, month: &str) -> Result<renkei_protocol::CareRecord, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/groups/{group}/records/{}", path_segment(month)), None).await
    }

    /// The same record as `csv` or `html` (a page to print).
    pub async fn care_record_as(&self, group: Uuid, month: &str, format: &str) -> Result<String, ClientError> {
        let path = format!("/groups/{group}/records/{}?format={format}", path_segment(month));
        let response = self.send::<()>(Method::GET, &path, None).await?;
        let status = response.status().as_u16();
        String::from_utf8(self.body(response).await?)
            .map_err(|e| ClientError::Unexpected { status, detail: e.to_string() })
    }

    /// Every group I am the attending physician of, for a month: complete or not, and the organisations
    /// linked across them.
    pub async fn record_summary(&self, month: &str) -> Result<renkei_protocol::RecordSummary, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/records/{}", path_segment(month)), None).await
    }

    pub async fn access_report(&self, group: Uuid) -> Result<renkei_protocol::AccessReport, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/groups/{group}/access-report"), None).await
    }

    /// A user's sessions with their durations (administrators).
    pub async fn admin_user_sessions(&self, user: &str) -> Result<renkei_protocol::SessionHistory, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/admin/users/{}/sessions", path_segment(user)), None).await
    }

    /// Audit entries, filtered by user (actor or target), group and action.
    pub async fn admin_audit(
        &self,
        user: Option<Uuid>,
        group: Option<Uuid>,
        action: Option<&str>,
    ) -> Result<renkei_protocol::AuditList, ClientError> {
        let search = AuditSearch { user, group, action: action.map(str::to_owned), ..AuditSearch::default() };
        self.admin_audit_search(&search).await
    }

    /// Audit entries matching `search`: the oldest first, or with `newest_first` the newest `limit`.
    pub async fn admin_audit_search(&self, search: &AuditSearch) -> Result<renkei_protocol::AuditList, ClientError> {
        let mut path = format!("/admin/audit?limit={}", search.limit.unwrap_or(10_000));
        let mut param = |name: &str, value: Option<String>| {
            if let Some(value) = value {
                path.push_str(&format!("&{name}={}", path_segment(&value)));
            }
        };
        param("user", search.user.map(|u| u.to_string()));
        param("group", search.group.map(|g| g.to_string()));
        param("action", search.action.clone());
        let rfc3339 = |t: OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).ok();
        param("from", search.from.and_then(rfc3339));
        param("to", search.to.and_then(rfc3339));
        param("newest_first", search.newest_first.then(|| "true".to_owned()));
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// The audit entries as a CSV (`csv`) or JSON (`json`) download; needs a recent sign-in.
    pub async fn admin_audit_export(&self, format: &str) -> Result<String, ClientError> {
        let path = format!("/admin/audit/export?format={}", path_segment(format));
        let response = self.send::<()>(Method::GET, &path, None).await?;
        let status = response.status().as_u16();
        String::from_utf8(self.body(response).await?)
            .map_err(|e| ClientError::Unexpected { status, detail: e.to_string() })
    }

    /// Verifies the audit chain on the server, against `anchor` (`SEQ HASH`) when given.
    pub async fn admin_audit_verification(
        &self,
        anchor: Option<&str>,
    ) -> Result<renkei_protocol::AuditVerification, ClientError> {
        let path = match anchor {
            Some(a) => format!("/admin/audit/verification?anchor={}", path_segment(a)),
            None => "/admin/audit/verification".to_owned(),
        };
        self.call::<(), _>(Method::GET, &path, None).await
    }

    /// Enters the password (and TOTP code) again, so administrator actions are allowed for another window.
    pub async fn reauthenticate(&self, password: &Sensitive, totp_code: Option<&str>) -> Result<(), ClientError> {
        let req = renkei_protocol::ReauthenticateRequest {
            password: password.clone(),
            totp_code: totp_code.map(str::to_owned),
        };
        self.call_empty(Method::POST, "/auth/reauthenticate", Some(&req)).await
    }

    /// The directory seen from a group: who is invitable, and why not (attending physician).
    pub async fn candidates(&self, group: Uuid, q: &str) -> Result<renkei_protocol::CandidateList, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/groups/{group}/candidates?q={}", path_segment(q)), None).await
    }

    /// A group's pending invitations (attending physician).
    pub async fn group_invitations(&self, group: Uuid) -> Result<InvitationList, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/groups/{group}/invitations"), None).await
    }

    /// What recording this consent would remove, without recording it.
    pub async fn preview_consent(
        &self,
        group: Uuid,
        req: &RecordConsentRequest,
    ) -> Result<renkei_protocol::ConsentPreview, ClientError> {
        self.call(Method::POST, &format!("/groups/{group}/consents/preview"), Some(req)).await
    }

    pub async fn admin_groups(&self) -> Result<AdminGroupList, ClientError> {
        self.call::<(), _>(Method::GET, "/admin/groups", None).await
    }

    pub async fn admin_group(&self, id: Uuid) -> Result<AdminGroup, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/admin/groups/{id}"), None).await
    }

    pub async fn admin_create_community_group(&self, label: &str) -> Result<AdminGroup, ClientError> {
        let req = CreateCommunityGroupRequest { label: label.to_owned() };
        self.call(Method::POST, "/admin/community-groups", Some(&req)).await
    }

    pub async fn admin_add_community_member(&self, id: Uuid, user: &str) -> Result<(), ClientError> {
        let req = UserRef { user: user.to_owned() };
        self.call_empty(Method::POST, &format!("/admin/community-groups/{id}/members"), Some(&req)).await
    }

    pub async fn admin_remove_community_member(&self, id: Uuid, user: &str) -> Result<(), ClientError> {
        let path = format!("/admin/community-groups/{id}/members/{}", path_segment(user));
        self.call_empty::<()>(Method::DELETE, &path, None).await
    }
}

/// Posts over HTTP (the live connection is in [`crate::live`]).
impl Client {
    /// Posts and waits until it is durably committed; a retried `client_msg_id` returns the original.
    pub async fn post(&self, group: Uuid, post: &NewPost) -> Result<Post, ClientError> {
        Ok(self.post_receipt(group, post).await?.post)
    }

    /// Like [`Client::post`], with who of the addressees is off hours (rule 5).
    pub async fn post_receipt(&self, group: Uuid, post: &NewPost) -> Result<PostReceipt, ClientError> {
        self.call(Method::POST, &format!("/groups/{group}/posts"), Some(post)).await
    }

    /// Questions addressed to me that I have neither answered nor marked seen.
    pub async fn addressed(&self) -> Result<AddressedList, ClientError> {
        self.call::<(), _>(Method::GET, "/addressed", None).await
    }

    pub async fn availability(&self) -> Result<Availability, ClientError> {
        self.call::<(), _>(Method::GET, "/me/availability", None).await
    }

    pub async fn set_availability(&self, availability: &Availability) -> Result<Availability, ClientError> {
        self.call(Method::PUT, "/me/availability", Some(availability)).await
    }

    /// My notification settings, the server's VAPID key and my push devices.
    pub async fn notifications(&self) -> Result<renkei_protocol::NotificationsView, ClientError> {
        self.call::<(), _>(Method::GET, "/me/notifications", None).await
    }

    pub async fn set_notifications(
        &self,
        settings: &renkei_protocol::NotificationSettings,
    ) -> Result<renkei_protocol::NotificationsView, ClientError> {
        self.call(Method::PUT, "/me/notifications", Some(settings)).await
    }

    pub async fn add_push_device(
        &self,
        subscription: &renkei_protocol::NewPushSubscription,
    ) -> Result<renkei_protocol::PushDevice, ClientError> {
        self.call(Method::POST, "/me/notifications/devices", Some(subscription)).await
    }

    pub async fn remove_push_device(&self, id: Uuid) -> Result<(), ClientError> {
        self.call_empty::<()>(Method::DELETE, &format!("/me/notifications/devices/{id}"), None).await
    }

    /// A page of history: after `after` going forward, or before `before` going backward.
    pub async fn posts(
        &self,
        group: Uuid,
        after: Option<i64>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<PostPage, ClientError> {
        let mut path = format!("/groups/{group}/posts?limit={limit}");
        if let Some(after) = after {
            path.push_str(&format!("&after={after}"));
        }
        if let Some(before) = before {
            path.push_str(&format!("&before={before}"));
        }
        self.call::<(), _>(Method::GET, &path, None).await
    }

    pub async fn edit_post(&self, group: Uuid, seq: i64, body: &str) -> Result<Post, ClientError> {
        self.edit_post_confirmed(group, seq, body, false).await
    }

    /// Edits, confirming the new text is not an emergency although it reads like one (rule 6).
    pub async fn edit_post_confirmed(
        &self,
        group: Uuid,
        seq: i64,
        body: &str,
        confirm_not_emergency: bool,
    ) -> Result<Post, ClientError> {
        let edit = EditPost { body: body.to_owned(), confirm_not_emergency, attachments: None, care_policy: None };
        self.call(Method::PATCH, &format!("/groups/{group}/posts/{seq}"), Some(&edit)).await
    }

    /// Edits a post's text and the files it shares from now on (earlier versions keep theirs).
    pub async fn edit_post_files(
        &self,
        group: Uuid,
        seq: i64,
        body: &str,
        files: &[Uuid],
    ) -> Result<Post, ClientError> {
        let edit = EditPost {
            body: body.to_owned(),
            confirm_not_emergency: false,
            attachments: Some(files.to_vec()),
            care_policy: None,
        };
        self.call(Method::PATCH, &format!("/groups/{group}/posts/{seq}"), Some(&edit)).await
    }

    /// Edits a care policy: the cautions for care and its record from now on.
    pub async fn edit_care_policy(
        &self,
        group: Uuid,
        seq: i64,
        cautions: &str,
        policy: &renkei_protocol::CarePolicy,
    ) -> Result<Post, ClientError> {
        let edit = EditPost {
            body: cautions.to_owned(),
            confirm_not_emergency: false,
            attachments: None,
            care_policy: Some(policy.clone()),
        };
        self.call(Method::PATCH, &format!("/groups/{group}/posts/{seq}"), Some(&edit)).await
    }

    pub async fn delete_post(&self, group: Uuid, seq: i64) -> Result<Post, ClientError> {
        self.call::<(), _>(Method::DELETE, &format!("/groups/{group}/posts/{seq}"), None).await
    }

    pub async fn post_history(&self, group: Uuid, seq: i64) -> Result<PostHistory, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/groups/{group}/posts/{seq}/history"), None).await
    }

    /// 「見ました」.
    pub async fn mark_seen(&self, group: Uuid, seq: i64) -> Result<SeenMark, ClientError> {
        self.call::<(), _>(Method::POST, &format!("/groups/{group}/posts/{seq}/seen"), None).await
    }

    pub async fn seen(&self, group: Uuid, seq: i64) -> Result<SeenList, ClientError> {
        self.call::<(), _>(Method::GET, &format!("/groups/{group}/posts/{seq}/seen"), None).await
    }

    /// Moves my read position forward; returns the position kept.
    pub async fn mark_read(&self, group: Uuid, seq: i64) -> Result<i64, ClientError> {
        let mark: ReadMark = self.call(Method::POST, &format!("/groups/{group}/read"), Some(&ReadMark { seq })).await?;
        Ok(mark.seq)
    }

    pub async fn unread(&self) -> Result<UnreadList, ClientError> {
        self.call::<(), _>(Method::GET, "/unread", None).await
    }
}

/// Logins and ids are `[a-z0-9._-]`; anything else is percent-encoded so it cannot change the path.
fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'_' | b'-' => char::from(b).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Decodes RFC 5987 percent-encoding (a file name in `Content-Disposition`).
fn percent_decode(encoded: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}
