//! The CLI's user-facing text, from the message catalogue shared with the web client (`locales/cli.*.ftl`
//! at the repository root, Fluent): in Japanese when the locale is `ja*`, English otherwise. The server's
//! stable error codes are mapped to text here, on the client side; the codes themselves never change.

use std::sync::OnceLock;

use fluent_bundle::FluentArgs;
use renkei_protocol::catalogue::Catalogue;
use renkei_protocol::{ErrorCode, Profession};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    /// From `LC_ALL`, then `LC_MESSAGES`, then `LANG` — the first one set decides, as in POSIX.
    pub fn detect() -> Self {
        Self::from_env(|k| std::env::var(k).ok())
    }

    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Self {
        let locale = ["LC_ALL", "LC_MESSAGES", "LANG"].into_iter().find_map(|k| get(k).filter(|v| !v.is_empty()));
        match locale {
            Some(l) if l.to_ascii_lowercase().starts_with("ja") => Self::Ja,
            _ => Self::En,
        }
    }

    /// Japanese or English, as the user reads.
    pub fn pick(self, ja: &'static str, en: &'static str) -> &'static str {
        match self {
            Self::Ja => ja,
            Self::En => en,
        }
    }
}

/// The catalogue's Japanese and English parts, as compiled into the binary.
pub const CATALOGUE_JA: &str = include_str!("../../locales/cli.ja.ftl");
pub const CATALOGUE_EN: &str = include_str!("../../locales/cli.en.ftl");

fn catalogue() -> &'static Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    CATALOGUE.get_or_init(|| Catalogue::new(CATALOGUE_JA, CATALOGUE_EN))
}

impl Lang {
    fn words(self) -> renkei_protocol::words::Lang {
        match self {
            Self::Ja => renkei_protocol::words::Lang::Ja,
            Self::En => renkei_protocol::words::Lang::En,
        }
    }
}

/// The message `key`, with `args`; the key itself when the catalogue lacks it (a unit test keeps every key
/// the program uses in both languages).
pub fn text_with(lang: Lang, key: &str, args: Option<&FluentArgs>) -> String {
    catalogue().text(lang.words(), key, args)
}

/// The message `key`.
pub fn text(lang: Lang, key: &str) -> String {
    text_with(lang, key, None)
}

/// Whether the catalogue has `key` in `lang`.
pub fn has(lang: Lang, key: &str) -> bool {
    catalogue().has(lang.words(), key)
}

/// Messages the CLI prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Msg {
    Password,
    NewPassword,
    RepeatPassword,
    CurrentPassword,
    PasswordsDiffer,
    TotpCode,
    LoggedIn,
    LoggedOut,
    PasswordChanged,
    PasswordSet,
    MustChangePassword,
    MustEnrollTotp,
    TotpScan,
    TotpEnabled,
    RecoveryCodes,
    TotpResetDone,
    SessionRevoked,
    NotLoggedIn,
    NoServer,
    UserCreated,
    SetupTokenHandOver,
    Disabled,
    Enabled,
    NoSuchGroup,
    AmbiguousGroup,
    NoSuchInvitation,
    GroupOpened,
    ConsentRecorded,
    RemovedByConsent,
    Invited,
    Joined,
    Declined,
    MemberRemoved,
    LeftGroup,
    HandoverRequested,
    HandoverAccepted,
    HandoverDeclined,
    Archived,
    CommunityMemberAdded,
    SeenMark,
    Reconnected,
    Disconnected,
    NowFollowing,
    OffHours,
    ChatHelp,
    ChatConfirmHint,
    NothingToConfirm,
    Downloading,
    Uploading,
    FileExists,
    ServerUnreachable,
    ServerWantsHttps,
    ServerWantsHttp,
    CertificateNotTrusted,
    ServerTimedOut,
    UnknownAction,
    NotATime,
    OnlyAdministrators,
    OnlyPhysicians,
    OnlyAttendingPhysician,
    OnlyAuthor,
    NoSuchUser,
    NextVisit,
    PolicyChanged,
    PolicyUnchanged,
    RecordComplete,
    RecordIncomplete,
    LinkedOrganisations,
}

impl Msg {
    /// Its catalogue key: `cli-` and the name in kebab case (`Msg::LoggedIn` is `cli-logged-in`).
    pub fn key(self) -> String {
        let name = format!("{self:?}");
        let mut key = String::from("cli");
        for c in name.chars() {
            if c.is_ascii_uppercase() {
                key.push('-');
            }
            key.push(c.to_ascii_lowercase());
        }
        key
    }

    pub fn text(self, lang: Lang) -> String {
        text(lang, &self.key())
    }
}

/// The text for a server error code.
pub fn error_text(code: ErrorCode, lang: Lang) -> String {
    text(lang, &format!("cli-error-{}", code.as_str()))
}

/// A membership role's name for people.
pub fn role_text(r: renkei_protocol::MemberRole, lang: Lang) -> String {
    text(lang, &format!("cli-role-{}", r.as_str()))
}

/// A group status for people.
pub fn status_text(s: renkei_protocol::GroupStatus, lang: Lang) -> String {
    text(lang, &format!("cli-status-{}", s.as_str()))
}

/// A profession's name for people.
pub fn profession_text(p: Profession, lang: Lang) -> &'static str {
    p.name(lang.words())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn japanese_only_for_ja_locales_and_lc_all_wins() {
        assert_eq!(Lang::from_env(env(&[("LANG", "ja_JP.UTF-8")])), Lang::Ja);
        assert_eq!(Lang::from_env(env(&[("LANG", "en_US.UTF-8")])), Lang::En);
        assert_eq!(Lang::from_env(env(&[("LC_ALL", "C"), ("LANG", "ja_JP.UTF-8")])), Lang::En);
        assert_eq!(Lang::from_env(env(&[("LC_ALL", ""), ("LANG", "ja_JP.UTF-8")])), Lang::Ja);
        assert_eq!(Lang::from_env(env(&[])), Lang::En);
    }

    #[test]
    fn error_codes_have_text_in_both_languages() {
        assert_eq!(error_text(ErrorCode::InvalidCredentials, Lang::Ja), "ログイン名またはパスワードが違います");
        assert_eq!(error_text(ErrorCode::InvalidCredentials, Lang::En), "Wrong login or password");
        for code in ErrorCode::ALL {
            for lang in [Lang::Ja, Lang::En] {
                assert!(has(lang, &format!("cli-error-{}", code.as_str())), "{lang:?} lacks {code:?}");
            }
        }
    }

    fn keys(source: &str) -> Vec<String> {
        source
            .lines()
            .filter_map(|l| l.split_once(" =").map(|(k, _)| k.trim()))
            .filter(|k| !k.is_empty() && !k.starts_with('#') && !k.starts_with(' '))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn every_key_is_in_both_languages_and_parses() {
        let (mut ja, mut en) = (keys(CATALOGUE_JA), keys(CATALOGUE_EN));
        ja.sort();
        en.sort();
        assert_eq!(ja, en, "the Japanese and English catalogues differ in their keys");
        for lang in [Lang::Ja, Lang::En] {
            // Building the bundle parses it and refuses a key given twice.
            assert!(has(lang, "cli-logged-in"));
        }
        for kind in renkei_protocol::PostKind::ALL.iter().filter(|k| **k != renkei_protocol::PostKind::Update) {
            assert!(
                has(Lang::Ja, &format!("cli-kind-{}", kind.as_str()))
                    && has(Lang::En, &format!("cli-kind-{}", kind.as_str()))
            );
        }
        assert_eq!(Msg::LoggedIn.text(Lang::Ja), "ログインしました");
        assert_eq!(Msg::Password.text(Lang::En), "Password: ", "a prompt keeps its trailing space");
    }
}
