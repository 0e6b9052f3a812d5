//! The server's words, from the one message catalogue (`locales/server.*.ftl`, Fluent): the
//! human-readable `message` of every error, in the request's language (`Accept-Language`: English when it
//! comes before Japanese, Japanese otherwise and by default). Codes and field problems never change.

use std::sync::OnceLock;

use fluent_bundle::FluentArgs;
use renkei_protocol::catalogue::Catalogue;
use renkei_protocol::words::Lang;

pub const CATALOGUE_JA: &str = include_str!("../../locales/server.ja.ftl");
pub const CATALOGUE_EN: &str = include_str!("../../locales/server.en.ftl");

tokio::task_local! {
    static LANGUAGE: Lang;
}

fn catalogue() -> &'static Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    CATALOGUE.get_or_init(|| Catalogue::new(CATALOGUE_JA, CATALOGUE_EN))
}

/// The language of the request being answered (Japanese outside of one, e.g. on a live connection).
pub fn current() -> Lang {
    LANGUAGE.try_with(|l| *l).unwrap_or(Lang::Ja)
}

/// The message `key` in the request's language, with one argument if any.
pub fn text_in(lang: Lang, key: &str, arg: Option<(&str, &str)>) -> String {
    let mut args = FluentArgs::new();
    if let Some((name, value)) = arg {
        args.set(name, value.to_owned());
    }
    catalogue().text(lang, key, Some(&args))
}

/// Answers the request in its `Accept-Language`.
pub async fn language(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let header = request.headers().get(axum::http::header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    let lang = Lang::from_accept_language(header);
    LANGUAGE.scope(lang, next.run(request)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(source: &str) -> Vec<&str> {
        let mut keys: Vec<&str> = source
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with(' '))
            .filter_map(|l| l.split_once(" =").map(|(k, _)| k.trim()))
            .collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn every_key_is_in_both_languages_and_every_key_the_errors_use_exists() {
        assert_eq!(keys(CATALOGUE_JA), keys(CATALOGUE_EN));
        let source = include_str!("error.rs");
        let used: Vec<&str> =
            source.split("\"server-").skip(1).map(|rest| &rest[..rest.find('"').unwrap_or(0)]).collect();
        assert!(used.len() > 40, "{used:?}");
        for key in used {
            let key = format!("server-{key}");
            for lang in [Lang::Ja, Lang::En] {
                assert!(catalogue().has(lang, &key), "{lang:?} lacks {key}");
            }
        }
        assert_eq!(text_in(Lang::En, "server-malformed-request", Some(("detail", "x"))), "malformed request: x");
        assert_eq!(text_in(Lang::Ja, "server-not-found", None), "見つかりません");
    }
}
