//! [`Client`]: one method per API operation, each returning the protocol's typed response or a
//! [`ClientError`] carrying the server's typed error body.

mod groups;
mod posts;

use std::path::Path;
use std::time::Duration;

use renkei_protocol::{
    API_PREFIX, ChangePasswordRequest, CreateUserRequest, CreatedUser, ErrorBody, LoginRequest, LoginResponse,
    Sensitive, SessionList, SessionTransport, SetupPasswordRequest, SetupToken, TotpCode, TotpConfirmed,
    TotpEnrollment, User, UserList,
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
