//! Names for people of the identifiers a document shows (a profession, a post's kind), in Japanese and
//! English: the server's exports and the CLI take them from here, the web client from its catalogue.

use crate::{PostKind, Profession};

/// The language a document is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    pub fn pick(self, ja: &'static str, en: &'static str) -> &'static str {
        match self {
            Self::Ja => ja,
            Self::En => en,
        }
    }

    /// From an HTTP `Accept-Language` value: English when English comes before Japanese, else Japanese.
    pub fn from_accept_language(header: Option<&str>) -> Self {
        let Some(header) = header else { return Self::Ja };
        for range in header.split(',') {
            let tag = range.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
            if tag.starts_with("ja") {
                return Self::Ja;
            }
            if tag.starts_with("en") {
                return Self::En;
            }
        }
        Self::Ja
    }
}

impl Profession {
    pub fn name(self, lang: Lang) -> &'static str {
        use Profession::*;
        match self {
            Physician => lang.pick("医師", "physician"),
            Dentist => lang.pick("歯科医師", "dentist"),
            Pharmacist => lang.pick("薬剤師", "pharmacist"),
            Nurse => lang.pick("看護師", "nurse"),
            Therapist => lang.pick("リハビリ職", "therapist"),
            CareManager => lang.pick("ケアマネジャー", "care manager"),
            CareWorker => lang.pick("介護職", "care worker"),
            SupportCentre => lang.pick("地域包括支援センター", "support centre"),
            Msw => lang.pick("MSW", "MSW"),
            Government => lang.pick("行政", "government"),
            Other => lang.pick("その他", "other"),
        }
    }
}

impl PostKind {
    pub fn name(self, lang: Lang) -> &'static str {
        match self {
            PostKind::Update => lang.pick("経過報告", "update"),
            PostKind::TreatmentQuestion => {
                lang.pick("治療の質問（主治医へ）", "treatment question (to the attending physician)")
            }
            PostKind::CarePlanQuestion => {
                lang.pick("ケアプランの質問（ケアマネジャーへ）", "care-plan question (to the care manager)")
            }
            PostKind::CarePolicy => lang.pick("診療方針", "care policy"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_s_language_comes_from_accept_language() {
        assert_eq!(Lang::from_accept_language(None), Lang::Ja);
        assert_eq!(Lang::from_accept_language(Some("en-GB,en;q=0.9,ja;q=0.8")), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("ja-JP,ja;q=0.9,en;q=0.8")), Lang::Ja);
        assert_eq!(Lang::from_accept_language(Some("fr-FR")), Lang::Ja);
        assert_eq!(PostKind::CarePolicy.name(Lang::Ja), "診療方針");
        assert_eq!(Profession::CareManager.name(Lang::En), "care manager");
    }
}
