//! Printing: aligned tables for people (CJK-aware widths), JSON for scripts, errors in the user's language.

use comfy_table::{Table, presets};
use renkei_cli::ClientError;
use renkei_cli::i18n::{Lang, Msg, error_text};
use renkei_protocol::ErrorCode;
use renkei_protocol::zone::Zone;
use serde::Serialize;
use time::{OffsetDateTime, UtcOffset};

/// A failed command, with the exit code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{}", .0.text(Lang::En))]
    Message(Msg),
    #[error("{0}")]
    Other(String),
    /// A wrong option value, said in the user's language.
    #[error("{0}")]
    Usage(String),
    /// Something named on the command line that does not exist, said with its name.
    #[error("{0}")]
    NotFound(String),
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self::Other(e.to_string())
    }
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        use ErrorCode as C;
        match self {
            Self::Client(ClientError::Api { body, .. }) => match body.code {
                C::Unauthenticated
                | C::InvalidCredentials
                | C::TotpRequired
                | C::TotpInvalid
                | C::AccountDisabled
                | C::ReauthenticationRequired
                | C::SetupTokenInvalid
                | C::TooManyAttempts => 3,
                C::NotFound => 4,
                C::Forbidden
                | C::PasswordChangeRequired
                | C::TotpEnrollmentRequired
                | C::PasswordTooWeak
                | C::OutsideConsentScope
                | C::ConsentRequired
                | C::GroupNotActive
                | C::EmergencyUseProhibited
                | C::PatientInfoInCommunityGroup
                | C::NoCareManagerInGroup
                | C::AttachmentsNotAllowedInCommunityGroup => 5,
                // Bad input is a usage error, like a wrong option.
                C::MalformedRequest | C::ValidationFailed | C::UnsupportedAttachmentType | C::AttachmentUnreadable => 2,
                C::UnsupportedMediaType
                | C::PayloadTooLarge
                | C::MethodNotAllowed
                | C::Conflict
                | C::AlreadyMember
                | C::RateLimited
                | C::TooManyUploads
                | C::InvitationExpired
                | C::Unavailable
                | C::Internal => 1,
            },
            Self::Client(ClientError::Transport(_)) => 6,
            Self::Client(ClientError::Live(_)) => 6,
            Self::Client(ClientError::Unexpected { .. } | ClientError::Setup(_)) => 1,
            Self::Message(Msg::NotLoggedIn) => 3,
            Self::Message(Msg::NoSuchGroup | Msg::NoSuchInvitation) => 4,
            Self::Message(Msg::AmbiguousGroup) => 2,
            Self::Message(Msg::NoServer) => 2,
            Self::Usage(_) => 2,
            Self::NotFound(_) => 4,
            Self::Message(_) | Self::Other(_) => 1,
        }
    }
}

#[derive(Debug)]
pub struct Output {
    pub lang: Lang,
    pub json: bool,
    zone: Zone,
}

impl Output {
    pub fn new(lang: Lang, json: bool, zone: Zone) -> Self {
        Self { lang, json, zone }
    }

    /// The user's UTC offset now.
    pub fn offset(&self) -> UtcOffset {
        self.zone.offset_at(OffsetDateTime::now_utc())
    }

    pub fn msg(&self, msg: Msg) -> String {
        msg.text(self.lang)
    }

    /// A status line for people; silent in JSON mode, where stdout is for data only.
    pub fn say(&self, msg: Msg) {
        if !self.json {
            println!("{}", self.msg(msg));
        }
    }

    pub fn json<T: Serialize>(&self, value: &T) {
        match serde_json::to_string_pretty(value) {
            Ok(text) => println!("{text}"),
            Err(e) => eprintln!("renkei: {e}"),
        }
    }

    /// Key–value lines, aligned.
    pub fn record(&self, rows: &[(&str, String)]) {
        let mut table = Table::new();
        table.load_style(presets::NOTHING);
        for (k, v) in rows {
            table.add_row(vec![(*k).to_owned(), v.clone()]);
        }
        println!("{}", table.trim_fmt());
    }

    /// A table whose headings (`"my role"`) are named in the user's language (`cli-col-my-role`).
    pub fn table(&self, header: &[&str], rows: Vec<Vec<String>>) {
        let mut table = Table::new();
        table.load_style(presets::NOTHING);
        table.set_header(header.iter().map(|h| self.heading(h)).collect::<Vec<_>>());
        for row in rows {
            table.add_row(row);
        }
        println!("{}", table.trim_fmt());
    }

    fn heading(&self, raw: &str) -> String {
        let indent = &raw[..raw.len() - raw.trim_start().len()];
        let key = format!("cli-col-{}", raw.trim().replace(' ', "-"));
        if renkei_cli::i18n::has(self.lang, &key) {
            format!("{indent}{}", renkei_cli::i18n::text(self.lang, &key))
        } else {
            raw.to_owned()
        }
    }

    /// A time in the user's zone, to the minute, with the zone marked (`2026-12-07 09:30 JST`).
    pub fn time(&self, t: OffsetDateTime) -> String {
        self.zone.minute(t)
    }

    pub fn error(&self, e: &CliError) {
        if self.json {
            // Scripts read errors as they read answers: `{"code", "message", "fields"}` on stderr, the
            // server's own body when it answered, a stable code of the CLI's otherwise.
            let body = match e {
                CliError::Client(ClientError::Api { body, .. }) => {
                    serde_json::to_value(body).expect("an error body serialises: plain fields, string keys")
                }
                CliError::Message(m) => {
                    serde_json::json!({ "code": snake_case(&format!("{m:?}")), "message": self.msg(*m) })
                }
                CliError::Client(ClientError::Transport(t)) => {
                    let code =
                        transport_hint(t).map_or("server_unreachable".to_owned(), |h| snake_case(&format!("{h:?}")));
                    serde_json::json!({ "code": code, "message": e.to_string() })
                }
                other => serde_json::json!({ "code": "error", "message": other.to_string() }),
            };
            eprintln!("{body}");
            return;
        }
        match e {
            CliError::Client(ClientError::Api { body, .. }) => {
                let mut line = format!("renkei: {} [{}]", error_text(body.code, self.lang), body.code);
                // Who may do it, in words.
                let who_may = match body.fields.get("required").map(String::as_str) {
                    Some("administrator") => Some(Msg::OnlyAdministrators),
                    Some("physician") => Some(Msg::OnlyPhysicians),
                    Some("attending_physician") => Some(Msg::OnlyAttendingPhysician),
                    Some("author") => Some(Msg::OnlyAuthor),
                    _ => None,
                };
                if let Some(msg) = who_may {
                    line = format!("renkei: {} [{}]", self.msg(msg), body.code);
                    eprintln!("{line}");
                    return;
                }
                for (field, problem) in &body.fields {
                    line.push_str(&format!("\n  {field}: {problem}"));
                }
                eprintln!("{line}");
            }
            CliError::Message(m) => eprintln!("renkei: {}", self.msg(*m)),
            CliError::Client(ClientError::Transport(e)) => match transport_hint(e) {
                Some(hint) => eprintln!("renkei: {}", self.msg(hint)),
                None => eprintln!("renkei: {e}"),
            },
            other => eprintln!("renkei: {other}"),
        }
    }
}

/// `NotLoggedIn` → `not_logged_in`.
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// What went wrong on the way to the server, in words that say what to do: nobody listening, the wrong
/// scheme for the server (HTTPS to a plain server or the other way round), a certificate not trusted, no
/// answer in time. `None` when the error says nothing more specific.
pub fn transport_hint(e: &reqwest::Error) -> Option<Msg> {
    let mut chain = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        chain.push_str(&format!("{err} | {err:?} | "));
        source = err.source();
    }
    if chain.contains("InvalidCertificate") || chain.contains("certificate") {
        Some(Msg::CertificateNotTrusted)
    } else if chain.contains("InvalidContentType") || chain.contains("corrupt message") {
        Some(Msg::ServerWantsHttp)
    } else if chain.contains("invalid HTTP version") || chain.contains("invalid HTTP status") {
        Some(Msg::ServerWantsHttps)
    } else if e.is_timeout() {
        Some(Msg::ServerTimedOut)
    } else if e.is_connect() {
        Some(Msg::ServerUnreachable)
    } else {
        None
    }
}

/// Downloads this large get a progress bar; smaller ones finish before a bar would be worth drawing.
const PROGRESS_FROM_BYTES: u64 = 256 * 1024;

/// A progress bar on stderr for large downloads (timeline exports, audit queries, long histories), drawn
/// only on a terminal: a pipe or a file gets nothing.
pub fn download_progress(lang: Lang) -> renkei_cli::client::Progress {
    transfer_progress(lang, Msg::Downloading)
}

/// The same bar for an upload (a photo sent with `renkei post --attach`).
pub fn upload_progress(lang: Lang) -> renkei_cli::client::Progress {
    transfer_progress(lang, Msg::Uploading)
}

fn transfer_progress(lang: Lang, message: Msg) -> renkei_cli::client::Progress {
    let bar: std::sync::Mutex<Option<indicatif::ProgressBar>> = std::sync::Mutex::new(None);
    std::sync::Arc::new(move |received, total| {
        let Ok(mut bar) = bar.lock() else { return };
        if bar.is_none() && received >= PROGRESS_FROM_BYTES && total != Some(received) {
            let new = indicatif::ProgressBar::with_draw_target(total, indicatif::ProgressDrawTarget::stderr());
            let template = "{msg} {bytes}/{total_bytes} {wide_bar} {eta}";
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                new.set_style(style);
            }
            new.set_message(message.text(lang));
            *bar = Some(new);
        }
        if let Some(b) = bar.as_ref() {
            if let Some(total) = total {
                b.set_length(total);
            }
            b.set_position(received);
            if total == Some(received) {
                b.finish_and_clear();
                *bar = None;
            }
        }
    })
}

/// A time as JSON output carries it: RFC 3339 text, as the API sends it (serde's default for `time` would
/// write a tuple of numbers).
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    /// Every table heading the commands print is in the catalogue, so a Japanese table is Japanese.
    #[test]
    fn every_table_heading_is_in_the_catalogue() {
        use renkei_cli::i18n::{Lang, has};
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let mut headings = Vec::new();
        // Spelled in two halves, so this test's own source is not a call.
        let marker = [".table(", "&["].concat();
        for entry in std::fs::read_dir(dir).unwrap() {
            let source = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
            for call in source.split(marker.as_str()).skip(1) {
                let list: Vec<&str> = call[..call.find(']').unwrap_or(0)].split(',').map(str::trim).collect();
                if list.iter().all(|h| h.starts_with('"')) {
                    headings.extend(list.iter().map(|h| h.trim_matches('"').trim().replace(' ', "-")));
                }
            }
        }
        assert!(headings.len() > 40, "{headings:?}");
        for lang in [Lang::Ja, Lang::En] {
            let missing: Vec<&String> = headings.iter().filter(|h| !has(lang, &format!("cli-col-{h}"))).collect();
            assert!(missing.is_empty(), "{lang:?} lacks headings {missing:?}");
        }
    }
}
