//! Text newtypes with their limits. Each `parse` says which rule a value broke as a stable problem code
//! that goes into `ErrorBody.fields`.

/// A rejected field: its name on the wire and a stable problem identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub problem: &'static str,
}

impl FieldError {
    pub fn new(field: &'static str, problem: &'static str) -> Self {
        Self { field, problem }
    }
}

fn has_control_chars(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Free text shown to people: trimmed, not empty, bounded (white space around it included, as the
/// document's `maxLength` says), no control characters.
pub fn parse_label(field: &'static str, raw: &str, max_chars: usize) -> Result<String, FieldError> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(FieldError::new(field, "empty"));
    }
    if raw.chars().count() > max_chars {
        return Err(FieldError::new(field, "too_long"));
    }
    if has_control_chars(value) {
        return Err(FieldError::new(field, "control_characters"));
    }
    Ok(value.to_owned())
}

/// Like [`parse_label`] for an optional field: absent or blank is `None`.
pub fn parse_optional_label(
    field: &'static str,
    raw: Option<&str>,
    max_chars: usize,
) -> Result<Option<String>, FieldError> {
    if raw.is_some_and(|r| r.chars().count() > max_chars) {
        return Err(FieldError::new(field, "too_long"));
    }
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        Some(value) => parse_label(field, value, max_chars).map(Some),
        None => Ok(None),
    }
}

/// Longer free text (notes): may span lines, bounded.
pub fn parse_notes(field: &'static str, raw: Option<&str>, max_chars: usize) -> Result<Option<String>, FieldError> {
    if raw.is_some_and(|r| r.chars().count() > max_chars) {
        return Err(FieldError::new(field, "too_long"));
    }
    let Some(value) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > max_chars {
        return Err(FieldError::new(field, "too_long"));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(FieldError::new(field, "control_characters"));
    }
    Ok(Some(value.to_owned()))
}

/// A login name: 3–64 characters of `a-z 0-9 . _ -`, starting with a letter or digit. Lower-case only,
/// so `Sato` and `sato` cannot be two accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login(String);

impl Login {
    pub const FIELD: &'static str = "login";

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let value = raw.trim().to_ascii_lowercase();
        let len = value.chars().count();
        if len < 3 {
            return Err(FieldError::new(Self::FIELD, "too_short"));
        }
        if len > 64 {
            return Err(FieldError::new(Self::FIELD, "too_long"));
        }
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-');
        if !value.chars().all(allowed) || !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(FieldError::new(Self::FIELD, "invalid_characters"));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name other members see, e.g. 「佐藤 花子」.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        parse_label("display_name", raw, 100).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The clinic, station, pharmacy or office a professional works for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation(String);

impl Organisation {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        parse_label("organisation", raw, 200).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A telephone number: digits with optional `+`, `-`, spaces and parentheses; full-width digits are
/// accepted and stored as ASCII, since Japanese input methods often produce them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let value: String = raw
            .trim()
            .chars()
            .map(|c| match c {
                '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
                'ー' | '−' | '－' => '-',
                '（' => '(',
                '）' => ')',
                '＋' => '+',
                other => other,
            })
            .collect();
        let digits = value.chars().filter(char::is_ascii_digit).count();
        if !(3..=20).contains(&digits) || value.chars().count() > 32 {
            return Err(FieldError::new("phone", "invalid_phone"));
        }
        if !value.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')')) {
            return Err(FieldError::new("phone", "invalid_phone"));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_lowercased_and_limited() {
        assert_eq!(Login::parse(" Sato.Hanako ").unwrap().as_str(), "sato.hanako");
        assert_eq!(Login::parse("ab").unwrap_err().problem, "too_short");
        assert_eq!(Login::parse(&"a".repeat(65)).unwrap_err().problem, "too_long");
        assert_eq!(Login::parse("佐藤").unwrap_err().problem, "too_short");
        assert_eq!(Login::parse("sato hanako").unwrap_err().problem, "invalid_characters");
        assert_eq!(Login::parse("-sato").unwrap_err().problem, "invalid_characters");
    }

    #[test]
    fn labels_reject_empty_long_and_control_text() {
        assert_eq!(DisplayName::parse("  佐藤 花子 ").unwrap().as_str(), "佐藤 花子");
        assert_eq!(DisplayName::parse("   ").unwrap_err().problem, "empty");
        assert_eq!(DisplayName::parse(&"あ".repeat(101)).unwrap_err().problem, "too_long");
        assert_eq!(Organisation::parse("a\u{7}b").unwrap_err().problem, "control_characters");
    }

    #[test]
    fn phones_accept_full_width_digits() {
        assert_eq!(Phone::parse("０４２２－５１－１１１１").unwrap().as_str(), "0422-51-1111");
        assert!(Phone::parse("call me").is_err());
        assert!(Phone::parse("12").is_err());
    }
}
