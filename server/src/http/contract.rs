//! The input rules, stated in the OpenAPI document: lengths, alphabets, ranges and enumerations, so that a
//! request a generated client builds from the schema is one the server accepts, and one it refuses is
//! refused. Each rule names the check it mirrors; `.ci/fuzz-api` (schemathesis, all checks) fails when a
//! schema-valid request is refused or a schema-invalid one accepted. The rules no schema can state
//! (a password's variety, a window that ends before it starts, a push service the operator allows) are
//! listed in docs/protocol.md, "Rules a schema cannot state".

use serde_json::{Value, json};

use crate::policy::MAX_PASSWORD_CHARS;

/// What `str::trim` removes: Unicode's White_Space, spelled out, since `\s` differs between regular
/// expression dialects (ECMAScript's has U+FEFF and lacks U+0085; Python's has U+001C–U+001F).
macro_rules! ws {
    () => {
        r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
    };
}
/// `char::is_control`: C0, DEL, C1.
macro_rules! ctrl {
    () => {
        r"\x00-\x1f\x7f-\x9f"
    };
}
/// The control characters notes may hold inside: all but line breaks and tabs.
macro_rules! notes_ctrl {
    () => {
        r"\x00-\x08\x0b-\x1f\x7f-\x9f"
    };
}
/// What `domain::parse_label` accepts: white space around something without control characters.
const LABEL: &str =
    concat!("^[", ws!(), "]*[^", ctrl!(), ws!(), "]([^", ctrl!(), "]*[^", ctrl!(), ws!(), "])?[", ws!(), "]*$");
/// What `domain::parse_optional_label` accepts: a label, or white space only (no value).
const OPTIONAL_LABEL: &str =
    concat!("^[", ws!(), "]*([^", ctrl!(), ws!(), "]([^", ctrl!(), "]*[^", ctrl!(), ws!(), "])?)?[", ws!(), "]*$");
/// What `domain::parse_notes` accepts: line breaks and tabs inside, no other control characters; blank
/// is no value.
const NOTES: &str = concat!(
    "^[",
    ws!(),
    "]*([^",
    notes_ctrl!(),
    ws!(),
    "]([^",
    notes_ctrl!(),
    "]*[^",
    notes_ctrl!(),
    ws!(),
    "])?)?[",
    ws!(),
    "]*$"
);
/// [`NOTES`] that is not blank (a post's text).
const NOTES_NOT_BLANK: &str = concat!(
    "^[",
    ws!(),
    "]*[^",
    notes_ctrl!(),
    ws!(),
    "]([^",
    notes_ctrl!(),
    "]*[^",
    notes_ctrl!(),
    ws!(),
    "])?[",
    ws!(),
    "]*$"
);
/// A password: no control characters.
const NO_CONTROLS: &str = concat!("^[^", ctrl!(), "]*$");
/// `domain::Login`: a letter or digit, then letters, digits, `.`, `_`, `-` (upper case is folded).
const LOGIN: &str = r"^[A-Za-z0-9][A-Za-z0-9._-]*$";
/// `domain::Phone`: 3–20 digits (full-width too) with `+ - ( )` and spaces.
const PHONE: &str = r"^[-+＋ー−－ ()（）]*([0-9０-９][-+＋ー−－ ()（）]*){3,20}$";
/// `policy::availability`: `HH:MM`, or `24:00`.
const TIME_OF_DAY: &str = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$";
/// `policy::records::Month`: `YYYY-MM`, years 2000–2999.
const MONTH: &str = r"^2[0-9]{3}-(0[1-9]|1[0-2])$";
/// `audit::parse_anchor`: a sequence number, one space, 64 hex digits.
const ANCHOR: &str = r"^([0-9]{1,18} [0-9a-fA-F]{64})?$";
/// `policy::offices::parse_network`: an IPv4 address or network (`10.1.0.0/16`).
const IPV4_NETWORK: &str = r"^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(/([0-9]|[12][0-9]|3[0-2]))?$";
/// The same for IPv6 (`2001:db8::/32`), in its usual forms.
const IPV6_NETWORK: &str = concat!(
    r"^(([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|([0-9a-fA-F]{1,4}:){1,7}:|([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}",
    r"|([0-9a-fA-F]{1,4}:){1,5}(:[0-9a-fA-F]{1,4}){1,2}|([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4}){1,3}",
    r"|([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}|([0-9a-fA-F]{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}",
    r"|[0-9a-fA-F]{1,4}:(:[0-9a-fA-F]{1,4}){1,6}|:((:[0-9a-fA-F]{1,4}){1,7}|:))(/([0-9]|[1-9][0-9]|1[01][0-9]|12[0-8]))?$"
);
/// A client message id: 1–64 visible ASCII characters.
const CLIENT_MSG_ID: &str = r"^[!-~]+$";
/// `policy::notifications::plausible_address`, a little stricter; blank is no address.
const EMAIL: &str = r"^[ \t\r\n]*$|^[^\s\x00-\x1f\x7f-\x9f@<>,;\x22]+@[^\s\x00-\x1f\x7f-\x9f@<>,;\x22.]+(\.[^\s\x00-\x1f\x7f-\x9f@<>,;\x22.]+)+$";

fn label(max: usize) -> Value {
    json!({ "pattern": LABEL, "minLength": 1, "maxLength": max })
}

fn optional_label(max: usize) -> Value {
    json!({ "pattern": OPTIONAL_LABEL, "maxLength": max })
}

fn notes(max: usize) -> Value {
    json!({ "pattern": NOTES, "maxLength": max })
}

fn new_password() -> Value {
    json!({ "minLength": crate::policy::MIN_PASSWORD_CHARS, "maxLength": MAX_PASSWORD_CHARS, "pattern": NO_CONTROLS })
}

/// Merges `rule` into the property `property` of the component schema `schema`.
fn property(doc: &mut Value, schema: &str, property: &str, rule: Value) {
    let target = &mut doc["components"]["schemas"][schema]["properties"][property];
    assert!(target.is_object(), "the contract names {schema}.{property}, which the document lacks");
    merge(target, rule);
}

/// Merges `rule` into the schema of the query parameter `name` of `method path`.
fn query(doc: &mut Value, method: &str, path: &str, name: &str, rule: Value) {
    parameter(doc, method, path, "query", name, rule);
}

fn parameter(doc: &mut Value, method: &str, path: &str, location: &str, name: &str, rule: Value) {
    let params = doc["paths"][path][method]["parameters"].as_array_mut();
    let param = params.and_then(|ps| ps.iter_mut().find(|p| p["name"] == name && p["in"] == location));
    let param = param
        .unwrap_or_else(|| panic!("the contract names {method} {path} {location} {name}, which the document lacks"));
    merge(&mut param["schema"], rule);
}

fn merge(target: &mut Value, rule: Value) {
    if let (Some(target), Value::Object(rule)) = (target.as_object_mut(), rule) {
        target.extend(rule);
    }
}

/// Writes the input rules into `doc`; `max_post_chars` is the server's configured limit of a post.
pub(super) fn constrain(doc: &mut Value, max_post_chars: usize) {
    // Accounts.
    property(doc, "CreateUserRequest", "login", json!({ "pattern": LOGIN, "minLength": 3, "maxLength": 64 }));
    property(doc, "CreateUserRequest", "display_name", label(100));
    property(doc, "CreateUserRequest", "organisation", label(200));
    property(doc, "CreateUserRequest", "kana", optional_label(100));
    property(doc, "CreateUserRequest", "phone", json!({ "pattern": PHONE, "maxLength": 32 }));
    property(doc, "CreateUserRequest", "initial_password", new_password());
    property(doc, "ChangePasswordRequest", "new_password", new_password());
    property(doc, "SetupPasswordRequest", "new_password", new_password());
    property(doc, "TotpCode", "code", json!({ "pattern": r"^[0-9]{6}$" }));

    // Groups, consent.
    property(doc, "OpenGroupRequest", "label", label(100));
    property(doc, "OpenGroupRequest", "notes", notes(2000));
    property(doc, "PatientIdentifiers", "full_name", label(100));
    property(doc, "PatientIdentifiers", "kana", optional_label(100));
    property(doc, "PatientIdentifiers", "patient_number", optional_label(50));
    property(doc, "Consenter", "name", label(100));
    property(doc, "Consenter", "relationship", optional_label(50));
    property(doc, "CreateCommunityGroupRequest", "label", label(100));
    property(doc, "RecordConsentRequest", "scope", json!({ "minItems": 1, "maxItems": 200 }));
    property(doc, "ScopeEntry", "organisation", label(200));
    // An entry names an organisation, a profession or a person (`entry_names_nothing`).
    let names = |field: &str| json!({ "required": [field], "properties": { field: { "not": { "type": "null" } } } });
    merge(
        &mut doc["components"]["schemas"]["ScopeEntry"],
        json!({ "anyOf": [names("organisation"), names("profession"), names("user")] }),
    );

    // Posts.
    property(doc, "NewPost", "body", json!({ "pattern": NOTES_NOT_BLANK, "maxLength": max_post_chars }));
    property(doc, "EditPost", "body", json!({ "pattern": NOTES_NOT_BLANK, "maxLength": max_post_chars }));
    property(
        doc,
        "NewPost",
        "client_msg_id",
        json!({ "pattern": CLIENT_MSG_ID, "minLength": 1, "maxLength": renkei_protocol::MAX_CLIENT_MSG_ID }),
    );
    property(doc, "NewPost", "reply_to", json!({ "minimum": 1 }));
    property(doc, "NewPost", "attachments", json!({ "maxItems": renkei_protocol::MAX_ATTACHMENTS_PER_POST }));
    property(doc, "EditPost", "attachments", json!({ "maxItems": renkei_protocol::MAX_ATTACHMENTS_PER_POST }));
    property(doc, "CarePolicy", "change_summary", notes(max_post_chars));
    property(doc, "ReadMark", "seq", json!({ "minimum": 0 }));
    property(doc, "AvailabilityWindow", "start", json!({ "pattern": TIME_OF_DAY }));
    property(doc, "AvailabilityWindow", "end", json!({ "pattern": TIME_OF_DAY }));
    property(doc, "AvailabilityWindow", "days", json!({ "minItems": 1 }));
    property(doc, "Availability", "windows", json!({ "maxItems": 50 }));
    property(doc, "Availability", "contact_preference", notes(500));

    // Notifications, offices.
    let digest = renkei_protocol::DIGEST_MINUTES;
    property(
        doc,
        "NotificationSettings",
        "digest_minutes",
        json!({ "minimum": digest.start(), "maximum": digest.end() }),
    );
    property(doc, "NotificationSettings", "email_address", json!({ "pattern": EMAIL, "maxLength": 254 }));
    property(doc, "NewPushSubscription", "device", optional_label(60));
    property(doc, "NewPushSubscription", "endpoint", json!({ "format": "uri", "maxLength": 2048 }));
    property(doc, "OfficeRulesUpdate", "purge_archived_after_days", json!({ "minimum": 1, "maximum": 36_500 }));
    let network = json!({ "type": "string", "anyOf": [{ "pattern": IPV4_NETWORK }, { "pattern": IPV6_NETWORK }] });
    property(doc, "OfficeRulesUpdate", "attachment_networks", json!({ "maxItems": 50, "items": network }));

    // Query parameters.
    let page = json!({ "minimum": 1, "maximum": crate::http::posts::MAX_PAGE });
    query(doc, "get", "/api/v1/groups/{id}/posts", "limit", page);
    query(doc, "get", "/api/v1/groups/{id}/posts", "after", json!({ "minimum": 0 }));
    query(doc, "get", "/api/v1/groups/{id}/posts", "before", json!({ "minimum": 1 }));
    query(doc, "get", "/api/v1/groups/{id}/candidates", "limit", json!({ "minimum": 1, "maximum": 200 }));
    query(doc, "get", "/api/v1/groups/{id}/candidates", "q", json!({ "maxLength": 200 }));
    // Empty is any profession.
    let professions: Vec<&str> =
        std::iter::once("").chain(renkei_protocol::Profession::ALL.iter().map(|p| p.as_str())).collect();
    query(doc, "get", "/api/v1/groups/{id}/candidates", "profession", json!({ "enum": professions }));
    query(doc, "get", "/api/v1/groups/{id}/export", "format", json!({ "enum": ["json", "markdown"] }));
    query(doc, "get", "/api/v1/groups/{id}/records/{month}", "format", json!({ "enum": ["json", "csv", "html"] }));
    query(doc, "get", "/api/v1/admin/audit/verification", "anchor", json!({ "pattern": ANCHOR }));
    let actions = json!({ "enum": crate::audit::action::ALL });
    for path in ["/api/v1/admin/audit", "/api/v1/admin/audit/export"] {
        query(doc, "get", path, "limit", json!({ "minimum": 1, "maximum": 10_000 }));
        query(doc, "get", path, "action", actions.clone());
        query(doc, "get", path, "from", json!({ "format": "date-time" }));
        query(doc, "get", path, "to", json!({ "format": "date-time" }));
    }
    query(doc, "get", "/api/v1/admin/audit/export", "format", json!({ "enum": ["json", "csv"] }));
    for path in ["/api/v1/records/{month}", "/api/v1/groups/{id}/records/{month}"] {
        parameter(doc, "get", path, "path", "month", json!({ "pattern": MONTH }));
    }
    parameter(doc, "put", "/api/v1/admin/offices/{organisation}", "path", "organisation", label(200));
}

#[cfg(test)]
mod tests {
    use regex::Regex;

    use super::*;
    use crate::domain::{Login, Phone, parse_label, parse_notes, parse_optional_label};

    /// Every string of up to three characters over an alphabet of the edges (white space each dialect
    /// disagrees on, controls, tabs, line breaks, full-width characters), and a few long ones.
    fn samples() -> Vec<String> {
        let alphabet =
            ['a', 'Z', '佐', ' ', '\t', '\n', '\r', '\u{3000}', '\u{85}', '\u{feff}', '\u{1c}', '\u{7}', '-', '０'];
        let mut out = vec![String::new()];
        let mut layer = vec![String::new()];
        for _ in 0..3 {
            layer = layer.iter().flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}"))).collect();
            out.extend(layer.iter().cloned());
        }
        for n in [99, 100, 101] {
            out.push("あ".repeat(n));
            out.push(format!(" {} ", "あ".repeat(n - 2)));
            out.push(format!("{}  ", "あ".repeat(n - 1)));
        }
        out
    }

    fn fits(pattern: &Regex, s: &str, max: usize) -> bool {
        pattern.is_match(s) && s.chars().count() <= max
    }

    #[test]
    fn the_text_patterns_accept_exactly_what_the_server_accepts() {
        let (label, optional, notes, body) = (
            Regex::new(LABEL).unwrap(),
            Regex::new(OPTIONAL_LABEL).unwrap(),
            Regex::new(NOTES).unwrap(),
            Regex::new(NOTES_NOT_BLANK).unwrap(),
        );
        for s in samples() {
            assert_eq!(fits(&label, &s, 100), parse_label("f", &s, 100).is_ok(), "label {s:?}");
            assert_eq!(
                fits(&optional, &s, 100),
                parse_optional_label("f", Some(&s), 100).is_ok(),
                "optional label {s:?}"
            );
            assert_eq!(fits(&notes, &s, 100), parse_notes("f", Some(&s), 100).is_ok(), "notes {s:?}");
            let not_blank = parse_notes("f", Some(&s), 100).is_ok_and(|n| n.is_some());
            assert_eq!(fits(&body, &s, 100), not_blank, "post body {s:?}");
        }
    }

    #[test]
    fn a_login_or_phone_the_pattern_allows_is_accepted() {
        let (login, phone) = (Regex::new(LOGIN).unwrap(), Regex::new(PHONE).unwrap());
        let mut extra = vec![
            "sato".to_owned(),
            "Sato.H-2".to_owned(),
            "03-1234-5678".to_owned(),
            "（０３）１２３４ー５６７８".to_owned(),
        ];
        extra.extend(samples());
        for s in extra {
            let n = s.chars().count();
            if login.is_match(&s) && (3..=64).contains(&n) {
                assert!(Login::parse(&s).is_ok(), "login {s:?}");
            }
            if phone.is_match(&s) && n <= 32 {
                assert!(Phone::parse(&s).is_ok(), "phone {s:?}");
            }
        }
    }

    #[test]
    fn the_document_carries_the_rules() {
        let doc = crate::http::openapi_document();
        let display_name = &doc["components"]["schemas"]["CreateUserRequest"]["properties"]["display_name"];
        assert_eq!(display_name["maxLength"], 100);
        assert_eq!(display_name["pattern"], LABEL);
        let limit = doc["paths"]["/api/v1/groups/{id}/posts"]["get"]["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "limit"))
            .map(|p| p["schema"]["maximum"].clone());
        assert_eq!(limit, Some(json!(crate::http::posts::MAX_PAGE)));
        for pattern in [IPV4_NETWORK, IPV6_NETWORK, MONTH, ANCHOR, EMAIL, TIME_OF_DAY, CLIENT_MSG_ID] {
            Regex::new(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
        }
        let v6 = Regex::new(IPV6_NETWORK).unwrap();
        for net in ["2001:db8::/32", "::1", "fe80::1:2/64", "1:2:3:4:5:6:7:8"] {
            assert!(v6.is_match(net) && crate::policy::offices::parse_network(net).is_some(), "{net}");
        }
    }
}
