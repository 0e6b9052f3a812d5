//! Reads a part of the one message catalogue (`locales/*.ftl`, Fluent) in Japanese and English: the CLI
//! (`cli.*.ftl`) and the server (`server.*.ftl`) each keep one, built once.

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};

use crate::words::Lang;

/// One part of the catalogue, in both languages.
pub struct Catalogue {
    ja: FluentBundle<FluentResource>,
    en: FluentBundle<FluentResource>,
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Catalogue")
    }
}

fn bundle(source: &str, id: &str) -> FluentBundle<FluentResource> {
    let mut bundle = FluentBundle::new_concurrent(vec![id.parse().expect("a language tag")]);
    bundle.set_use_isolating(false);
    let resource = FluentResource::try_new(source.to_owned()).expect("the catalogue parses (a unit test checks)");
    bundle.add_resource(resource).expect("no key twice (a unit test checks)");
    bundle
}

impl Catalogue {
    /// From the Japanese and English sources (compiled in with `include_str!`).
    pub fn new(ja: &str, en: &str) -> Self {
        Self { ja: bundle(ja, "ja"), en: bundle(en, "en") }
    }

    fn of(&self, lang: Lang) -> &FluentBundle<FluentResource> {
        match lang {
            Lang::Ja => &self.ja,
            Lang::En => &self.en,
        }
    }

    /// The message `key` with `args`; the key itself when missing (each user's tests keep every key it
    /// uses in both languages).
    pub fn text(&self, lang: Lang, key: &str, args: Option<&FluentArgs>) -> String {
        let bundle = self.of(lang);
        match bundle.get_message(key).and_then(|m| m.value()) {
            Some(pattern) => {
                let mut errors = Vec::new();
                bundle.format_pattern(pattern, args, &mut errors).into_owned()
            }
            None => key.to_owned(),
        }
    }

    pub fn has(&self, lang: Lang, key: &str) -> bool {
        self.of(lang).has_message(key)
    }
}
