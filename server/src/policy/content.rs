//! What a post may say. Rule 6: emergencies go by telephone, never through renkei. Rule 4: no individual
//! patient information in community groups. Both compare text after the same normalisation, so full-width
//! and half-width forms, case, spacing and katakana/hiragana cannot slip past them.

use renkei_protocol::PatientIdentifiers;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

/// NFKC (full-width → half-width and the like), then lower case: the form every comparison starts from.
/// Most posts are NFKC already (kanji, hiragana, ASCII), which the quick check tells without decomposing
/// and recomposing every character (that took ~5 % of the server's CPU at maximum throughput, twice a post).
fn folded(text: &str) -> String {
    if is_nfkc_quick(text.chars()) == IsNormalized::Yes {
        text.chars().flat_map(char::to_lowercase).collect()
    } else {
        text.nfkc().flat_map(char::to_lowercase).collect()
    }
}

/// NFKC, lower case, katakana → hiragana, whitespace removed.
pub fn compact(text: &str) -> String {
    compact_folded(&folded(text))
}

/// [`compact`] of a text already [`folded`].
fn compact_folded(folded: &str) -> String {
    folded
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            // Katakana ァ..ヶ map onto hiragana ぁ..ゖ (same order, 0x60 apart).
            'ァ'..='ヶ' => char::from_u32(c as u32 - 0x60).unwrap_or(c),
            other => other,
        })
        .collect()
}

/// The ASCII words of a text already [`folded`], for matching English terms as whole words.
fn words(folded: &str) -> Vec<&str> {
    folded.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect()
}

/// The emergency lexicon, parsed once.
#[derive(Debug, Clone)]
pub struct Lexicon {
    /// (term as written, compact form) for terms with non-ASCII characters or digits only.
    substrings: Vec<(String, String)>,
    /// (term as written, its words) for English terms.
    phrases: Vec<(String, Vec<String>)>,
}

/// The lexicon that ships with the server.
pub const DEFAULT_LEXICON: &str = include_str!("../../lexicon/emergency.txt");

impl Lexicon {
    /// One term per line; blank lines and `#` comments are ignored.
    pub fn parse(text: &str) -> Self {
        let mut substrings = Vec::new();
        let mut phrases = Vec::new();
        for line in text.lines() {
            let term = line.split('#').next().unwrap_or_default().trim();
            if term.is_empty() {
                continue;
            }
            let english = term.is_ascii() && term.chars().any(|c| c.is_ascii_alphabetic());
            if english {
                phrases.push((term.to_owned(), words(&folded(term)).into_iter().map(str::to_owned).collect()));
            } else {
                substrings.push((term.to_owned(), compact(term)));
            }
        }
        Self { substrings, phrases }
    }

    pub fn len(&self) -> usize {
        self.substrings.len() + self.phrases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rule 6 (「緊急時・急ぎの連絡は電話で行い、ICTでは行わない」): the lexicon terms a text contains, as written
    /// in the lexicon. Empty means the text does not read as an emergency.
    pub fn emergency_terms(&self, text: &str) -> Vec<String> {
        let folded = folded(text);
        let compacted = compact_folded(&folded);
        let text_words = words(&folded);
        let mut found: Vec<String> = self
            .substrings
            .iter()
            .filter(|(_, c)| !c.is_empty() && compacted.contains(c.as_str()))
            .map(|(t, _)| t.clone())
            .collect();
        for (term, phrase) in &self.phrases {
            if !phrase.is_empty() && text_words.windows(phrase.len()).any(|w| w == phrase.as_slice()) {
                found.push(term.clone());
            }
        }
        found
    }
}

/// Rule 4 (「市全体のグループでは、個別の支援情報は共有しない」): whether a text names a patient — full name (with
/// or without the space between family and given name), kana reading, or patient number — after
/// normalisation. Identifiers too short to be distinctive are ignored rather than refusing every post.
pub fn mentions_patient(text: &str, patients: &[PatientIdentifiers]) -> bool {
    let compacted = compact(text);
    let distinctive = |id: &str| {
        let c = compact(id);
        (c.chars().count() >= 3 || (c.chars().count() >= 2 && !c.is_ascii())).then_some(c)
    };
    patients.iter().any(|p| {
        [Some(p.full_name.as_str()), p.kana.as_deref(), p.patient_number.as_deref()]
            .into_iter()
            .flatten()
            .filter_map(distinctive)
            .any(|id| compacted.contains(&id))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lexicon() -> Lexicon {
        Lexicon::parse(DEFAULT_LEXICON)
    }

    #[test]
    fn text_the_quick_check_passes_folds_as_full_normalisation_does() {
        let texts = [
            "急変しました",
            "ｷｭｳﾍﾝ",
            "カ\u{3099}",
            "ＥＭＥＲＧＥＮＣＹ",
            "Ⅻ ㍻ ﬁ",
            "Straße İ",
            "e\u{301}",
            "Call ASAP",
        ];
        for text in texts {
            let full: String = text.nfkc().flat_map(char::to_lowercase).collect();
            assert_eq!(folded(text), full, "{text}");
        }
        assert_eq!(compact("ｷｭｳ ﾍﾝ"), "きゅうへん");
    }

    #[test]
    fn forty_and_more_emergencies_are_recognised() {
        let positives = [
            "急変しました",
            "患者が急変",
            "救急搬送をお願いします",
            "救急車を呼んでください",
            "至急お電話ください",
            "至急！",
            "緊急です",
            "緊急の対応が必要",
            "心肺停止の状態",
            "呼吸停止しています",
            "意識がないです",
            "意識なし",
            "意識不明の状態",
            "意識レベル低下あり",
            "大量出血があります",
            "119番しました",
            "１１９番へ",
            "救　急を要請",
            "急 変",
            "至急 連絡",
            "ＥＭＥＲＧＥＮＣＹ",
            "Emergency!",
            "this is an emergency",
            "two emergencies today",
            "URGENT: call me",
            "urgent",
            "please reply urgently",
            "Reply ASAP",
            "asap please",
            "labs stat",
            "STAT",
            "cardiac arrest suspected",
            "Cardiac  Arrest",
            "patient not breathing",
            "he stopped breathing",
            "found unconscious",
            "Unresponsive on arrival",
            "called an ambulance",
            "ambulance on the way",
            "Ａｍｂｕｌａｎｃｅ",
            "call 119 now",
            "救命処置中",
            "今日は急変なし",
            "no urgent issues",
        ];
        let lexicon = lexicon();
        for text in positives {
            assert!(!lexicon.emergency_terms(text).is_empty(), "missed: {text}");
        }
        assert!(positives.len() >= 40);
    }

    #[test]
    fn forty_and_more_ordinary_updates_pass() {
        let negatives = [
            "血圧 128/76、体温 36.5℃",
            "褥瘡は改善傾向です",
            "食事量は8割",
            "デイサービスの曜日を変更します",
            "訪問は来週火曜に変更",
            "服薬カレンダーをセットしました",
            "排便あり",
            "夜間よく眠れています",
            "ご家族と面談しました",
            "ケアプランを更新します",
            "状態は安定しています",
            "変化なし",
            "急ぎません",
            "救済制度の案内をしました",
            "緊張がほぐれて笑顔が見られました",
            "意識は清明です",
            "出血はありません",
            "心肺機能は安定",
            "呼吸は穏やか",
            "次回の往診は月曜",
            "リハビリを継続します",
            "薬局から配達します",
            "status is stable",
            "statistics attached",
            "the state of the wound improved",
            "no changes today",
            "blood pressure normal",
            "walking with a cane",
            "appetite good",
            "sleeping well",
            "urge to void noted",
            "emerging redness on the heel",
            "conscious and alert",
            "breathing comfortably",
            "cardiac rehab next week",
            "arrested development of the ulcer",
            "ambulatory with assistance",
            "starting the new regimen",
            "stationary bike exercise",
            "call me tomorrow if convenient",
            "電話番号は0422-11-2222",
            "119日目の記録",
        ];
        let lexicon = lexicon();
        for text in negatives {
            assert!(
                lexicon.emergency_terms(text).is_empty(),
                "false alarm on {text}: {:?}",
                lexicon.emergency_terms(text)
            );
        }
        assert!(negatives.len() >= 40);
    }

    #[test]
    fn matched_terms_are_reported_as_written_in_the_lexicon() {
        assert_eq!(lexicon().emergency_terms("ＵＲＧＥＮＴ、救急車を"), ["救急", "救急車", "urgent"]);
        let custom = Lexicon::parse("# mine\n至急\nrush\n");
        assert_eq!(custom.len(), 2);
        assert_eq!(custom.emergency_terms("Rush, 至急"), ["至急", "rush"]);
    }

    #[test]
    fn patients_are_recognised_in_any_width_spacing_and_kana() {
        let patients = [PatientIdentifiers {
            full_name: "山田 花子".into(),
            kana: Some("ヤマダ ハナコ".into()),
            patient_number: Some("P-0042".into()),
        }];
        for text in [
            "山田花子さんの件",
            "山田　花子 様",
            "やまだはなこさん",
            "ﾔﾏﾀﾞ ﾊﾅｺ",
            "ヤマダハナコ",
            "ID p-0042 について",
            "Ｐ－００４２",
        ] {
            assert!(mentions_patient(text, &patients), "missed {text}");
        }
        for text in ["山田先生の講演会", "花子さんの件", "研修会のお知らせ", "P-004"] {
            assert!(!mentions_patient(text, &patients), "false match {text}");
        }
        let short = [PatientIdentifiers { full_name: "A".into(), kana: None, patient_number: Some("7".into()) }];
        assert!(!mentions_patient("Plan A for ward 7", &short));
    }
}
