//! Printing: aligned tables for people (CJK-aware widths), JSON for scripts, errors in the user's language.

use comfy_table::{Table, presets};
use renkei_cli::ClientError;
use renkei_cli::i18n::{Lang, Msg, error_text};
use renkei_protocol::ErrorCode;
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
                | C::NoCareManagerInGroup => 5,
                C::MalformedRequest
                | C::ValidationFailed
                | C::UnsupportedMediaType
                | C::PayloadTooLarge
                | C::MethodNotAllowed
                | C::Conflict
                | C::AlreadyMember
                | C::RateLimited
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
            Self::Message(_) | Self::Other(_) => 1,
        }
    }
}

#[derive(Debug)]
pub struct Output {
    pub lang: Lang,
    pub json: bool,
    offset: UtcOffset,
}

impl Output {
    pub fn new(lang: Lang, json: bool, offset: UtcOffset) -> Self {
        Self { lang, json, offset }
    }

    pub fn msg(&self, msg: Msg) -> &'static str {
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

    pub fn table(&self, header: &[&str], rows: Vec<Vec<String>>) {
        let mut table = Table::new();
        table.load_style(presets::NOTHING);
        table.set_header(header.to_vec());
        for row in rows {
            table.add_row(row);
        }
        println!("{}", table.trim_fmt());
    }

    /// A time in the user's local offset, to the minute.
    pub fn time(&self, t: OffsetDateTime) -> String {
        let t = t.to_offset(self.offset);
        let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
        t.format(&fmt).unwrap_or_else(|_| t.to_string())
    }

    pub fn error(&self, e: &CliError) {
        match e {
            CliError::Client(ClientError::Api { body, .. }) => {
                if self.json {
                    eprintln!("{}", serde_json::to_string(body).unwrap_or_default());
                    return;
                }
                let mut line = format!("renkei: {} [{}]", error_text(body.code, self.lang), body.code);
                for (field, problem) in &body.fields {
                    line.push_str(&format!("\n  {field}: {problem}"));
                }
                eprintln!("{line}");
            }
            CliError::Message(m) => eprintln!("renkei: {}", self.msg(*m)),
            other => eprintln!("renkei: {other}"),
        }
    }
}

/// Downloads this large get a progress bar; smaller ones finish before a bar would be worth drawing.
const PROGRESS_FROM_BYTES: u64 = 256 * 1024;

/// A progress bar on stderr for large downloads (timeline exports, audit queries, long histories), drawn
/// only on a terminal: a pipe or a file gets nothing.
pub fn download_progress(lang: Lang) -> renkei_cli::client::Progress {
    let bar: std::sync::Mutex<Option<indicatif::ProgressBar>> = std::sync::Mutex::new(None);
    std::sync::Arc::new(move |received, total| {
        let Ok(mut bar) = bar.lock() else { return };
        if bar.is_none() && received >= PROGRESS_FROM_BYTES && total != Some(received) {
            let new = indicatif::ProgressBar::with_draw_target(total, indicatif::ProgressDrawTarget::stderr());
            let template = "{msg} {bytes}/{total_bytes} {wide_bar} {eta}";
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                new.set_style(style);
            }
            new.set_message(Msg::Downloading.text(lang));
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
