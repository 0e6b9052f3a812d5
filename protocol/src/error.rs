//! The one error body every failure carries, over HTTP and (later) WebSocket alike.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Stable, machine-readable error identifiers. Clients map them to text in the user's language; the
/// identifiers themselves never change once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not valid JSON, not UTF-8, or does not have the expected shape.
    MalformedRequest,
    /// The body was well-formed but one or more fields are invalid; `fields` says which and why.
    ValidationFailed,
    /// The request needs `Content-Type: application/json`.
    UnsupportedMediaType,
    /// The body exceeds the size limit.
    PayloadTooLarge,
    /// No bearer token, or the token is unknown, expired, revoked or forged.
    Unauthenticated,
    /// Login or password wrong (deliberately does not say which).
    InvalidCredentials,
    /// The password was right; a TOTP code is needed to finish logging in.
    TotpRequired,
    /// The TOTP code is wrong, expired or was already used.
    TotpInvalid,
    /// Policy requires a second factor and this account has none yet: enrol before doing anything else.
    TotpEnrollmentRequired,
    /// The account must change its initial password before doing anything else.
    PasswordChangeRequired,
    /// The new password does not meet the password policy.
    PasswordTooWeak,
    /// The setup token is unknown, expired or already used.
    SetupTokenInvalid,
    /// The account has been disabled by an administrator.
    AccountDisabled,
    /// Too many failed attempts; retry after `retry_after_seconds` in `fields`.
    TooManyAttempts,
    /// The caller is authenticated but not allowed to do this.
    Forbidden,
    /// An administrator's sign-in is older than the configured window: enter the password (and TOTP code)
    /// again (`POST /api/v1/auth/reauthenticate`), then repeat the request.
    ReauthenticationRequired,
    /// Nothing here, or nothing the caller may know about.
    NotFound,
    /// The HTTP method is not supported on this path.
    MethodNotAllowed,
    /// The request conflicts with existing state (e.g. a login already taken).
    Conflict,
    /// The invitee (or handover target) is not covered by the consent in force (rule 3). Fail closed.
    OutsideConsentScope,
    /// Nobody can be invited before the patient's or family's consent is recorded (rule 2).
    ConsentRequired,
    /// The user is already a member of, or already invited to, this group.
    AlreadyMember,
    /// The invitation (or handover) has expired.
    InvitationExpired,
    /// The group is archived or read-only (consent withdrawn); nothing in it can change.
    GroupNotActive,
    /// Too many frames on this connection; slow down.
    RateLimited,
    /// Rule 6: the post reads as an emergency. Telephone instead (the attending physician's number is in
    /// `fields` when there is one), or re-send with `confirm_not_emergency` if it is not one.
    EmergencyUseProhibited,
    /// Rule 4: a community group post names a patient. Individual support information stays in the
    /// patient's own group.
    PatientInfoInCommunityGroup,
    /// Rule 3: a care-plan question needs a care manager in the group.
    NoCareManagerInGroup,
    /// The file is not one of the attachment types renkei accepts (JPEG, PNG, WebP, PDF), judged by its
    /// content.
    UnsupportedAttachmentType,
    /// The image cannot be read: truncated, corrupt, or more pixels than the server decodes.
    AttachmentUnreadable,
    /// Rule 4: a community group takes no attachments (a picture cannot be checked for a patient's name).
    AttachmentsNotAllowedInCommunityGroup,
    /// This node is processing as many uploads as it allows at once; retry after `retry_after_seconds`.
    TooManyUploads,
    /// The server could not reach its database; try again.
    Unavailable,
    /// An unexpected server fault. The cause is logged on the server, never sent.
    Internal,
}

/// What a client author needs to know about one error code: docs/errors.md is rendered from these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorGuide {
    /// The HTTP status it comes with (over the WebSocket, the same code in an `error` frame).
    pub status: u16,
    /// What it means.
    pub meaning: &'static str,
    /// The `fields` keys it carries, if any.
    pub fields: &'static str,
    /// What a client should do about it.
    pub action: &'static str,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: &'static [ErrorCode] = &[
        Self::MalformedRequest,
        Self::ValidationFailed,
        Self::UnsupportedMediaType,
        Self::PayloadTooLarge,
        Self::Unauthenticated,
        Self::InvalidCredentials,
        Self::TotpRequired,
        Self::TotpInvalid,
        Self::TotpEnrollmentRequired,
        Self::PasswordChangeRequired,
        Self::PasswordTooWeak,
        Self::SetupTokenInvalid,
        Self::AccountDisabled,
        Self::TooManyAttempts,
        Self::Forbidden,
        Self::ReauthenticationRequired,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::Conflict,
        Self::OutsideConsentScope,
        Self::ConsentRequired,
        Self::AlreadyMember,
        Self::InvitationExpired,
        Self::GroupNotActive,
        Self::RateLimited,
        Self::EmergencyUseProhibited,
        Self::PatientInfoInCommunityGroup,
        Self::NoCareManagerInGroup,
        Self::UnsupportedAttachmentType,
        Self::AttachmentUnreadable,
        Self::AttachmentsNotAllowedInCommunityGroup,
        Self::TooManyUploads,
        Self::Unavailable,
        Self::Internal,
    ];

    /// The HTTP status this code always comes with.
    pub fn http_status(self) -> u16 {
        self.guide().status
    }

    /// Meaning, status, fields and what to do: the error catalogue (docs/errors.md).
    pub fn guide(self) -> ErrorGuide {
        let g = |status, meaning, fields, action| ErrorGuide { status, meaning, fields, action };
        match self {
            Self::MalformedRequest => g(
                400,
                "The body is not valid JSON or UTF-8, does not have the expected shape (an unknown field included), or a query parameter cannot be read.",
                "",
                "Fix the request; repeating it unchanged fails again.",
            ),
            Self::ValidationFailed => g(
                422,
                "The request was well-formed but fields are invalid.",
                "each invalid field (e.g. `login`, `scope.user`, `limit`) → its problem (`empty`, `too_short`, `too_long`, `control_characters`, `invalid_characters`, `out_of_range`, `taken`, `not_a_physician`, `not_an_active_member`, …)",
                "Show each field's problem next to it; change those fields.",
            ),
            Self::UnsupportedMediaType => {
                g(415, "A body was sent without `Content-Type: application/json`.", "", "Send JSON with that header.")
            }
            Self::PayloadTooLarge => g(
                413,
                "The body exceeds the server's `max_body_bytes` (64 KiB by default), or an upload its `max_attachment_bytes` (20 MiB).",
                "`limit_bytes` for an upload",
                "Shorten it (a post's text has its own limit, `max_post_chars`); send a smaller file.",
            ),
            Self::Unauthenticated => g(
                401,
                "No session, or the token is unknown, expired (absolute or idle), revoked, or its account disabled.",
                "",
                "Sign in again; keep what the user wrote.",
            ),
            Self::InvalidCredentials => g(
                401,
                "Login or password wrong, or the account disabled (deliberately not said which).",
                "",
                "Ask again; after repeated failures the answer becomes `too_many_attempts`.",
            ),
            Self::TotpRequired => g(
                401,
                "The password was right; the account has a second factor.",
                "",
                "Ask for the 6-digit code (or a recovery code) and repeat the login with `totp_code`.",
            ),
            Self::TotpInvalid => {
                g(401, "The code is wrong, expired, or was already used.", "", "Ask for the next code.")
            }
            Self::TotpEnrollmentRequired => g(
                403,
                "Policy requires a second factor and this account has none yet.",
                "",
                "Enrol (`POST /me/totp/enroll`, then `/me/totp/confirm`) before anything else.",
            ),
            Self::PasswordChangeRequired => g(
                403,
                "The account still has the initial password an administrator set.",
                "",
                "Change it (`POST /me/password`) before anything else.",
            ),
            Self::PasswordTooWeak => g(
                422,
                "The new password does not meet the policy (13+ characters, or 8+ with a second factor; at most 256; not too repetitive).",
                "`new_password` → `shorter_than_13`, `shorter_than_8`, `too_long`, `control_characters` or `too_repetitive`",
                "Say the rule and ask for another.",
            ),
            Self::SetupTokenInvalid => g(
                400,
                "The setup token is unknown, expired or already used.",
                "",
                "Ask the administrator for a new one.",
            ),
            Self::AccountDisabled => {
                g(403, "The account has been disabled by an administrator.", "", "Contact the administrator.")
            }
            Self::TooManyAttempts => g(
                429,
                "Too many failed sign-ins for this login from this address (or in all).",
                "`retry_after_seconds`",
                "Wait that long, then let the user try again.",
            ),
            Self::Forbidden => g(
                403,
                "Authenticated, but this role may not do this (not an administrator, not the attending physician, not the author, not a physician), or a cookie request came from an origin not allowed.",
                "`required`: `administrator`, `physician`, `attending_physician`, `author` or `allowed_origin`",
                "Do not offer the action to this user; say who may (`required`).",
            ),
            Self::ReauthenticationRequired => g(
                403,
                "An administrator's sign-in is older than `admin_reauth_seconds`; changes and exports need a recent one.",
                "",
                "Ask for the password (and TOTP code), `POST /auth/reauthenticate`, then repeat the request once.",
            ),
            Self::NotFound => g(
                404,
                "Nothing here, or nothing the caller may know about (a group they are not an active member of answers so).",
                "",
                "Treat as absent.",
            ),
            Self::MethodNotAllowed => g(405, "The path exists but not with this method.", "", "Fix the client."),
            Self::Conflict => g(
                409,
                "The request conflicts with the current state: a login already taken, TOTP already enabled, or the group changed meanwhile.",
                "`login` → `taken` for a taken login",
                "Reload the state and decide again.",
            ),
            Self::OutsideConsentScope => g(
                403,
                "The invitee (or handover target) is not covered by the consent in force (rule 3; fail closed).",
                "",
                "Amend the consent first, or invite someone it covers (`GET /groups/{id}/candidates` says who before asking).",
            ),
            Self::ConsentRequired => g(
                409,
                "Nobody can be invited before the consent of the patient or family is recorded (rule 2), or after it was withdrawn.",
                "",
                "Record the consent first.",
            ),
            Self::AlreadyMember => g(
                409,
                "The user is already a member of, or invited to, this group.",
                "",
                "Nothing to do; reload the member list.",
            ),
            Self::InvitationExpired => {
                g(410, "The invitation (or handover) has expired.", "", "Ask the attending physician to invite again.")
            }
            Self::GroupNotActive => g(
                409,
                "The group is archived, or read-only after consent was withdrawn: nothing in it can change.",
                "",
                "Reload the group; only a new consent reopens a read-only one.",
            ),
            Self::RateLimited => g(
                429,
                "Too many frames on this WebSocket connection (200 a second, bursts of 400).",
                "",
                "Slow down and send the refused frame again.",
            ),
            Self::EmergencyUseProhibited => g(
                422,
                "Rule 6: the post reads as an emergency; emergencies go by telephone.",
                "`matched` (the terms, comma-separated); `attending_physician_phone` when there is one",
                "Offer the phone number; if it is not an emergency, send again with `confirm_not_emergency` (recorded).",
            ),
            Self::PatientInfoInCommunityGroup => {
                g(422, "Rule 4: a community-group post names a patient.", "", "Post it in the patient's own group.")
            }
            Self::NoCareManagerInGroup => g(
                422,
                "Rule 3: a care-plan question needs a care manager in the group.",
                "",
                "Invite the care manager, or post an update instead.",
            ),
            Self::UnsupportedAttachmentType => g(
                415,
                "The uploaded file is not a JPEG, PNG or WebP image or a PDF, judged by its content (not its name or `Content-Type`).",
                "`accepted` (the types, comma-separated)",
                "Tell the user which types are accepted; convert the file (a phone's camera takes JPEG).",
            ),
            Self::AttachmentUnreadable => g(
                422,
                "The image cannot be decoded: truncated, corrupt, or more pixels than `max_attachment_pixels`.",
                "`reason`: `truncated_or_corrupt` or `too_many_pixels`",
                "Send the file again in full, or a smaller picture.",
            ),
            Self::AttachmentsNotAllowedInCommunityGroup => g(
                422,
                "Rule 4: community groups take no attachments; a picture cannot be checked for a patient's name.",
                "",
                "Share the file in the patient's own group.",
            ),
            Self::TooManyUploads => g(
                429,
                "This node is cleaning as many uploads as it allows at once (`max_concurrent_uploads`).",
                "`retry_after_seconds`; the `Retry-After` header says the same",
                "Wait that long and send the file again (an outbox does it by itself).",
            ),
            Self::Unavailable => g(
                503,
                "The server could not reach its database (a restart or failover).",
                "",
                "Retry shortly with the same request (posts with the same `client_msg_id` are never duplicated).",
            ),
            Self::Internal => g(
                500,
                "An unexpected fault; its cause is logged on the server, never sent.",
                "",
                "Retry once; report it if it persists.",
            ),
        }
    }

    /// The error catalogue as Markdown (docs/errors.md; `renkei-server errors` prints it).
    pub fn catalogue_markdown() -> String {
        let mut out = String::from(
            "# Error codes\n\nEvery failure, over HTTP and the WebSocket alike, carries `{code, message, fields}`. `code` is\n\
             one of the stable identifiers below (they never change once released); `message` is English for logs and\n\
             developers — clients show their own words for `code` (the web client's catalogue has `error-<code>`);\n\
             `fields` adds details. Generated from `protocol::ErrorCode::guide` by `renkei-server errors`; a test\n\
             fails when this file differs.\n\n| code | HTTP | meaning | `fields` | what to do |\n|---|---|---|---|---|\n",
        );
        for code in Self::ALL {
            let g = code.guide();
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} |\n",
                code.as_str(),
                g.status,
                g.meaning,
                g.fields,
                g.action
            ));
        }
        out
    }

    /// The identifier as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedRequest => "malformed_request",
            Self::ValidationFailed => "validation_failed",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Unauthenticated => "unauthenticated",
            Self::InvalidCredentials => "invalid_credentials",
            Self::TotpRequired => "totp_required",
            Self::TotpInvalid => "totp_invalid",
            Self::TotpEnrollmentRequired => "totp_enrollment_required",
            Self::PasswordChangeRequired => "password_change_required",
            Self::PasswordTooWeak => "password_too_weak",
            Self::SetupTokenInvalid => "setup_token_invalid",
            Self::AccountDisabled => "account_disabled",
            Self::TooManyAttempts => "too_many_attempts",
            Self::Forbidden => "forbidden",
            Self::ReauthenticationRequired => "reauthentication_required",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict => "conflict",
            Self::OutsideConsentScope => "outside_consent_scope",
            Self::ConsentRequired => "consent_required",
            Self::AlreadyMember => "already_member",
            Self::InvitationExpired => "invitation_expired",
            Self::GroupNotActive => "group_not_active",
            Self::RateLimited => "rate_limited",
            Self::EmergencyUseProhibited => "emergency_use_prohibited",
            Self::PatientInfoInCommunityGroup => "patient_info_in_community_group",
            Self::NoCareManagerInGroup => "no_care_manager_in_group",
            Self::UnsupportedAttachmentType => "unsupported_attachment_type",
            Self::AttachmentUnreadable => "attachment_unreadable",
            Self::AttachmentsNotAllowedInCommunityGroup => "attachments_not_allowed_in_community_group",
            Self::TooManyUploads => "too_many_uploads",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every error response: `{code, message, fields}`.
///
/// `message` is English text for logs and developers; clients show their own localised text for `code`.
/// `fields` maps a request field (or a detail such as `retry_after_seconds`) to a short problem identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// For people, in the request's `Accept-Language` (English when it comes before Japanese, Japanese
    /// otherwise); a program decides by `code` and `fields`, which never change.
    pub message: String,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), fields: BTreeMap::new() }
    }

    pub fn with_field(mut self, field: impl Into<String>, problem: impl Into<String>) -> Self {
        self.fields.insert(field.into(), problem.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_errors_md_is_the_catalogue() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/errors.md");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == ErrorCode::catalogue_markdown(),
            "docs/errors.md is stale: cargo run -p renkei-server -- errors > docs/errors.md"
        );
    }

    #[test]
    fn every_code_is_listed_once_with_a_guide() {
        let unique: std::collections::BTreeSet<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(unique.len(), ErrorCode::ALL.len());
        // A variant missing from ALL fails here: the schema lists every variant.
        let schema = serde_json::to_value(<ErrorCode as utoipa::PartialSchema>::schema()).unwrap();
        let variants: std::collections::BTreeSet<&str> =
            schema["enum"].as_array().expect("enum").iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(variants, unique);
        for c in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(c).unwrap(), serde_json::json!(c.as_str()));
            let g = c.guide();
            assert!((400..600).contains(&g.status) && !g.meaning.is_empty() && !g.action.is_empty(), "{c}");
        }
    }

    #[test]
    fn as_str_matches_the_serialised_form() {
        for code in [
            ErrorCode::MalformedRequest,
            ErrorCode::ValidationFailed,
            ErrorCode::UnsupportedMediaType,
            ErrorCode::PayloadTooLarge,
            ErrorCode::Unauthenticated,
            ErrorCode::InvalidCredentials,
            ErrorCode::TotpRequired,
            ErrorCode::TotpInvalid,
            ErrorCode::TotpEnrollmentRequired,
            ErrorCode::PasswordChangeRequired,
            ErrorCode::PasswordTooWeak,
            ErrorCode::SetupTokenInvalid,
            ErrorCode::AccountDisabled,
            ErrorCode::TooManyAttempts,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::Conflict,
            ErrorCode::OutsideConsentScope,
            ErrorCode::ConsentRequired,
            ErrorCode::AlreadyMember,
            ErrorCode::InvitationExpired,
            ErrorCode::GroupNotActive,
            ErrorCode::RateLimited,
            ErrorCode::EmergencyUseProhibited,
            ErrorCode::PatientInfoInCommunityGroup,
            ErrorCode::NoCareManagerInGroup,
            ErrorCode::UnsupportedAttachmentType,
            ErrorCode::AttachmentUnreadable,
            ErrorCode::AttachmentsNotAllowedInCommunityGroup,
            ErrorCode::TooManyUploads,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::json!(code.as_str()));
        }
    }

    #[test]
    fn error_body_wire_shape() {
        let body = ErrorBody::new(ErrorCode::TooManyAttempts, "slow down").with_field("retry_after_seconds", "30");
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"code":"too_many_attempts","message":"slow down","fields":{"retry_after_seconds":"30"}}"#
        );
    }
}
