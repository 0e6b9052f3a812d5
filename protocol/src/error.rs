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
    /// The server could not reach its database; try again.
    Unavailable,
    /// An unexpected server fault. The cause is logged on the server, never sent.
    Internal,
}

impl ErrorCode {
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
