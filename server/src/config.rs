//! Server configuration: built-in defaults, then an optional TOML file (`--config FILE`), then `RENKEI_*`
//! environment variables. Unknown keys are an error in every layer, so a typo never silently falls back to a
//! default.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Environment variables that start with `RENKEI_` but belong to other renkei tools (the test harness, the
/// CLI), so the server must not reject them as unknown settings.
const FOREIGN_ENV_VARS: &[&str] = &[
    "RENKEI_REQUIRE_POSTGRES",
    "RENKEI_CONFIG_DIR",
    "RENKEI_PROFILE",
    "RENKEI_SERVER",
    "RENKEI_SERVER_BIN",
    FAILPOINT_ENV,
];

/// Names a failpoint for crash tests (read by `failpoint.rs`); not a setting.
pub const FAILPOINT_ENV: &str = "RENKEI_FAILPOINT";

/// The effective configuration. Every field has a default, so an empty file is a valid configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://...`. When empty, SQLite in `data_dir/renkei.sqlite3`.
    pub database_url: Option<String>,
    /// Where the SQLite database lives when `database_url` is not set.
    pub data_dir: PathBuf,
    /// Maximum database connections in this node's pool.
    pub database_max_connections: u32,
    /// PEM certificate chain for TLS. With `tls_key`, the server speaks HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    pub tls_key: Option<PathBuf>,
    /// A TLS-terminating proxy sits in front of this node: plain HTTP is then allowed on any address, and
    /// the client address is taken from the last `X-Forwarded-For` hop.
    pub behind_tls_proxy: bool,
    /// `text` (for a terminal) or `json` (for a log collector).
    pub log_format: LogFormat,
    /// A tracing filter, e.g. `info` or `renkei_server=debug,info`.
    pub log_filter: String,
    /// Who must have a second factor: `off`, `admins` or `everyone`.
    pub require_totp: TotpPolicy,
    /// A session ends this many hours after login, however active.
    pub session_absolute_hours: u32,
    /// A session ends after this many minutes without a request.
    pub session_idle_minutes: u32,
    /// How long a setup token handed to a new user stays valid.
    pub setup_token_hours: u32,
    /// How many days an invitation to a group stays open.
    pub invitation_days: u32,
    /// Longest post body, in characters.
    pub max_post_chars: usize,
    /// The time zone of availability hours, month boundaries and the times in exports: an IANA name
    /// (default `Asia/Tokyo`) or a fixed offset like `+09:00`.
    pub time_zone: String,
    /// A file replacing the emergency lexicon that ships with the server (one term per line).
    pub emergency_lexicon_file: Option<PathBuf>,
    /// Frames queued per WebSocket connection before it is marked lagged and catches up from the database.
    pub ws_queue_frames: usize,
    /// Origins, besides the server's own, allowed to open a WebSocket from a browser and to make requests
    /// carried by the session cookie (e.g. `https://renkei.example.jp`). Clients that send no Origin
    /// (programs) are not affected.
    pub ws_allowed_origins: Vec<String>,
    /// Client frames allowed per second per connection (a burst of twice as many is tolerated).
    pub ws_frames_per_second: u32,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Largest accepted attachment upload, in bytes (20 MiB).
    pub max_attachment_bytes: u64,
    /// Most pixels an uploaded image may have; larger ones are refused before they are decoded (a
    /// decompression bomb). 40,000,000 covers a 48-megapixel phone's usual 12-megapixel output many times.
    pub max_attachment_pixels: u64,
    /// Uploads this node reads and cleans at once; more are answered `429` with `Retry-After`. Each holds
    /// up to `max_attachment_bytes` plus its decoded pixels (4 bytes each) in memory.
    pub max_concurrent_uploads: usize,
    /// Seconds an administrator's sign-in counts as recent: past it, an action that changes accounts,
    /// groups or exports needs the password (and TOTP code) entered again. 900 = 15 minutes.
    pub admin_reauth_seconds: u32,
    /// Seconds a connection may take to send a request's headers, and may sit idle between requests
    /// (HTTP/1.1 keep-alive): past it the connection is closed, so half-open connections cannot pile up.
    pub http_header_timeout_seconds: u32,
    /// Seconds a connection may pass with no traffic either way before it is closed (what ends an idle
    /// HTTP/2 connection; a WebSocket's pings keep it busy).
    pub connection_idle_seconds: u32,
    /// Connections from one address that have not yet made an authenticated request; past it a new one is
    /// closed at once, so one client cannot take every file descriptor. 0 = no cap (not applied behind a
    /// TLS proxy, where every connection comes from the proxy: cap there).
    pub max_unauthenticated_connections_per_address: u32,
    /// Failed logins allowed per account within an hour (OWASP ASVS: at most 100).
    pub login_account_failures_per_hour: u32,
    /// Failed logins allowed per client address within an hour (higher: many users share a clinic's NAT).
    pub login_address_failures_per_hour: u32,
    /// Longest back-off after repeated failures, in seconds; keeps an attacker from locking a user out for long.
    pub login_backoff_max_seconds: u32,
    /// How often expired sessions and invitations are closed (each with an audit entry) and the audit
    /// anchor is written, in seconds.
    pub housekeeping_seconds: u32,
    /// Retention (rule 7): an archived patient group's content — posts with every version and mark, files,
    /// patient identifiers, consenters' names — is purged this many days after it was archived, by the
    /// housekeeping sweep, leaving a tombstone (`renkei-server purge --dry-run` lists what would go). Unset:
    /// never (the default). Medical records law asks for at least five years (1826 days).
    pub purge_archived_after_days: Option<u32>,
    /// A file the latest audit entry (`SEQ HASH`) is written to after every sweep that saw new entries
    /// (default `<data_dir>/audit-anchor`); verification checks the log against it. Keep it (or ship it)
    /// where the database's administrators cannot write. The anchor is also logged at INFO.
    pub audit_anchor_file: Option<PathBuf>,
    /// The audit log's key (default `<data_dir>/audit.key`, made on first start, mode 0600): each entry
    /// carries an HMAC under it, so whoever can write the database but not read this file cannot forge an
    /// entry. Back it up with the database; every node of a cluster needs the same file.
    pub audit_key_file: Option<PathBuf>,
    /// Serve `/metrics` on this address of its own (plain HTTP; bind it to an internal interface) instead of
    /// the main listener. Unset: the main listener serves it to loopback clients only (never with
    /// `behind_tls_proxy`, where every client looks local), or to whoever has the token.
    pub metrics_listen: Option<SocketAddr>,
    /// A file holding a token: `/metrics` then answers whoever sends `Authorization: Bearer TOKEN`, on either
    /// listener, and nobody else.
    pub metrics_token_file: Option<PathBuf>,
    /// The server's VAPID private key for Web Push (default `<data_dir>/vapid.key`, made on first start, mode
    /// 0600). Browsers bind their subscriptions to its public key: every node of a cluster needs the same
    /// file, and a new key means every member subscribes again.
    pub vapid_key_file: Option<PathBuf>,
    /// Who runs this server, for the push services (`mailto:` or `https:`); they may write here about abuse.
    pub vapid_subject: String,
    /// Push services the server sends to: a subscription's endpoint must be `https` on one of these hosts
    /// (or a subdomain), so a subscription cannot make the server call into its own network.
    pub push_services: Vec<String>,
    /// How often each node plans notifications and sends what is due, in seconds.
    pub notification_seconds: u32,
    /// The web client's address, for the link in e-mails (e.g. `https://renkei.example.jp`).
    pub public_url: Option<String>,
    /// SMTP server for e-mail notifications; unset: no e-mail.
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    /// `starttls` (port 587), `tls` (465) or `none` (only to a loopback relay).
    pub smtp_security: SmtpSecurity,
    pub smtp_username: Option<String>,
    /// A file holding the SMTP password (kept out of this configuration).
    pub smtp_password_file: Option<PathBuf>,
    /// The sender of notification e-mails.
    pub smtp_from: String,
}

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    Starttls,
    Tls,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TotpPolicy {
    Off,
    Admins,
    Everyone,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            database_url: None,
            data_dir: PathBuf::from("./renkei-data"),
            database_max_connections: 16,
            tls_cert: None,
            tls_key: None,
            behind_tls_proxy: false,
            log_format: LogFormat::Text,
            log_filter: "info".to_owned(),
            require_totp: TotpPolicy::Off,
            session_absolute_hours: 12,
            session_idle_minutes: 60,
            setup_token_hours: 72,
            invitation_days: 14,
            max_post_chars: 8000,
            time_zone: renkei_protocol::zone::DEFAULT_ZONE.to_owned(),
            emergency_lexicon_file: None,
            ws_queue_frames: 256,
            ws_allowed_origins: Vec::new(),
            ws_frames_per_second: 200,
            max_body_bytes: 64 * 1024,
            max_attachment_bytes: 20 * 1024 * 1024,
            max_attachment_pixels: 40_000_000,
            max_concurrent_uploads: 4,
            http_header_timeout_seconds: 15,
            connection_idle_seconds: 120,
            max_unauthenticated_connections_per_address: 256,
            admin_reauth_seconds: 900,
            login_account_failures_per_hour: 100,
            login_address_failures_per_hour: 1000,
            login_backoff_max_seconds: 60,
            housekeeping_seconds: 60,
            purge_archived_after_days: None,
            audit_anchor_file: None,
            audit_key_file: None,
            metrics_listen: None,
            metrics_token_file: None,
            vapid_key_file: None,
            vapid_subject: "mailto:renkei@localhost".to_owned(),
            push_services: ["fcm.googleapis.com", "push.services.mozilla.com", "push.apple.com", "notify.windows.com"]
                .map(str::to_owned)
                .to_vec(),
            notification_seconds: 30,
            public_url: None,
            smtp_host: None,
            smtp_port: 587,
            smtp_security: SmtpSecurity::Starttls,
            smtp_username: None,
            smtp_password_file: None,
            smtp_from: "renkei <renkei@localhost>".to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not a `#[source]`: its text is already in this message, and would otherwise print twice.
    #[error("configuration: {0}")]
    Load(config::ConfigError),
    #[error("configuration: {0}")]
    Invalid(String),
}

impl From<config::ConfigError> for ConfigError {
    fn from(e: config::ConfigError) -> Self {
        Self::Load(e)
    }
}

impl Config {
    /// Loads defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Like [`Config::load`] with an explicit environment, so tests need not touch the process's own.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("RENKEI_") && !FOREIGN_ENV_VARS.contains(&k.as_str()))
            .collect();
        let mut builder = config::Config::builder().add_source(config::Config::try_from(&Config::default())?);
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::Invalid(format!("config file {} does not exist", path.display())));
            }
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        builder = builder.add_source(config::Environment::with_prefix("RENKEI").try_parsing(true).source(Some(env)));
        let config: Config = builder.build()?.try_deserialize()?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::Invalid("tls_cert and tls_key must be given together".into()));
        }
        if self.tls_cert.is_none() && !self.listen.ip().is_loopback() && !self.behind_tls_proxy {
            return Err(ConfigError::Invalid(format!(
                "refusing plain HTTP on non-loopback address {}: set tls_cert and tls_key, or behind_tls_proxy = true \
                 when a TLS-terminating proxy sits in front of this node",
                self.listen
            )));
        }
        if self.session_absolute_hours == 0
            || self.session_idle_minutes == 0
            || self.setup_token_hours == 0
            || self.admin_reauth_seconds == 0
        {
            return Err(ConfigError::Invalid("session and setup-token lifetimes must be positive".into()));
        }
        if self.login_account_failures_per_hour == 0 || self.login_address_failures_per_hour == 0 {
            return Err(ConfigError::Invalid("login failure limits must be positive".into()));
        }
        if renkei_protocol::zone::Zone::parse(&self.time_zone).is_none() {
            return Err(ConfigError::Invalid(format!(
                "time_zone {:?}: expected an IANA name like Asia/Tokyo, or an offset like +09:00",
                self.time_zone
            )));
        }
        if self.http_header_timeout_seconds == 0 || self.connection_idle_seconds == 0 {
            return Err(ConfigError::Invalid(
                "http_header_timeout_seconds and connection_idle_seconds must be positive".into(),
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid("max_body_bytes must be at least 1024".into()));
        }
        if self.max_attachment_bytes < 1024 || self.max_attachment_pixels == 0 || self.max_concurrent_uploads == 0 {
            return Err(ConfigError::Invalid(
                "max_attachment_bytes must be at least 1024; max_attachment_pixels and max_concurrent_uploads positive"
                    .into(),
            ));
        }
        if self.notification_seconds == 0 {
            return Err(ConfigError::Invalid("notification_seconds must be positive".into()));
        }
        if !(self.vapid_subject.starts_with("mailto:") || self.vapid_subject.starts_with("https://")) {
            return Err(ConfigError::Invalid("vapid_subject must start with mailto: or https://".into()));
        }
        if let Some(host) = &self.smtp_host
            && self.smtp_security == SmtpSecurity::None
            && !host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
            && host != "localhost"
        {
            return Err(ConfigError::Invalid(format!(
                "smtp_security = \"none\" sends in the clear: only to a relay on this machine, not {host}"
            )));
        }
        Ok(())
    }

    pub fn effective_vapid_key_file(&self) -> PathBuf {
        self.vapid_key_file.clone().unwrap_or_else(|| self.data_dir.join("vapid.key"))
    }

    /// [`Config::time_zone`] (validated at load; UTC if a hand-built configuration has a bad one).
    pub fn zone(&self) -> renkei_protocol::zone::Zone {
        renkei_protocol::zone::Zone::parse(&self.time_zone)
            .or_else(|| renkei_protocol::zone::Zone::parse("UTC"))
            .expect("UTC is a zone")
    }

    /// The database URL in effect: the configured one, or SQLite inside the data directory.
    pub fn effective_audit_anchor_file(&self) -> PathBuf {
        self.audit_anchor_file.clone().unwrap_or_else(|| self.data_dir.join("audit-anchor"))
    }

    pub fn effective_audit_key_file(&self) -> PathBuf {
        self.audit_key_file.clone().unwrap_or_else(|| self.data_dir.join("audit.key"))
    }

    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.is_empty() => url.clone(),
            _ => format!("sqlite://{}", self.data_dir.join("renkei.sqlite3").display()),
        }
    }

    /// The configuration as TOML with secrets (a password inside the database URL) replaced by `***`.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = Some(redact_url_password(&self.effective_database_url()));
        toml::to_string(&shown).unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`; also hides a `password=` query parameter.
fn redact_url_password(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        if let Some((userinfo, host)) = authority.rsplit_once('@')
            && let Some((user, _password)) = userinfo.split_once(':')
        {
            out = format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..]);
        }
    }
    if let Some(start) = out.find("password=") {
        let value_start = start + "password=".len();
        let value_end = out[value_start..].find('&').map_or(out.len(), |i| value_start + i);
        out.replace_range(value_start..value_end, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_then_file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("renkei.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\nsession_idle_minutes = 15\n").unwrap();
        let config = Config::load_from(Some(&file), env(&[("RENKEI_SESSION_IDLE_MINUTES", "5")])).unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.session_idle_minutes, 5);
        assert_eq!(config.session_absolute_hours, 12);
    }

    #[test]
    fn unknown_keys_are_errors_in_file_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("renkei.toml");
        std::fs::write(&file, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        assert!(Config::load_from(Some(&file), env(&[])).is_err());
        assert!(Config::load_from(None, env(&[("RENKEI_LISTN", "127.0.0.1:1")])).is_err());
        // Variables of the other renkei tools are not the server's business.
        assert!(Config::load_from(None, env(&[("RENKEI_REQUIRE_POSTGRES", "1")])).is_ok());
    }

    #[test]
    fn plain_http_is_refused_off_loopback_unless_behind_a_proxy() {
        let err = Config::load_from(None, env(&[("RENKEI_LISTEN", "0.0.0.0:8443")])).unwrap_err();
        assert!(err.to_string().contains("refusing plain HTTP"), "{err}");
        let ok =
            Config::load_from(None, env(&[("RENKEI_LISTEN", "0.0.0.0:8443"), ("RENKEI_BEHIND_TLS_PROXY", "true")]));
        assert!(ok.is_ok());
    }

    #[test]
    fn printed_configuration_hides_the_database_password() {
        let config = Config::load_from(
            None,
            env(&[("RENKEI_DATABASE_URL", "postgres://renkei:s3cret@db.example:5432/renkei?password=other")]),
        )
        .unwrap();
        let shown = config.to_redacted_toml();
        assert!(!shown.contains("s3cret") && !shown.contains("other"), "{shown}");
        assert!(shown.contains("postgres://renkei:***@db.example:5432/renkei"), "{shown}");
    }
}
