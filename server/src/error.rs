//! [`ApiError`]: every way a request can fail, mapped exhaustively to an HTTP status and a wire
//! [`ErrorCode`]. Internal causes are logged here, once, and never sent to the client.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use renkei_protocol::{ErrorBody, ErrorCode, PendingStep};

use crate::domain::FieldError;
use crate::policy::Denied;
use crate::policy::groups::{GroupDenied, TargetRefused};
use crate::store::{Conflict, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unauthenticated")]
    Unauthenticated,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("TOTP code required")]
    TotpRequired,
    #[error("TOTP code invalid")]
    TotpInvalid,
    #[error("pending step: {0:?}")]
    Pending(PendingStep),
    #[error("password too weak")]
    PasswordTooWeak(&'static str),
    #[error("setup token invalid")]
    SetupTokenInvalid,
    #[error("account disabled")]
    AccountDisabled,
    #[error("too many attempts")]
    TooManyAttempts(Duration),
    #[error("forbidden: {0:?}")]
    Forbidden(Denied),
    /// An administrator's sign-in is too old for an action that changes accounts, groups or exports.
    #[error("re-authentication required")]
    ReauthenticationRequired,
    #[error("not found")]
    NotFound,
    #[error("target refused: {0:?}")]
    Target(TargetRefused),
    /// Rule 6: reads as an emergency (matched lexicon terms; the attending physician's phone, if any).
    #[error("emergency use prohibited")]
    Emergency { matched: Vec<String>, phone: Option<String> },
    /// Rule 4: a community-group post names a patient.
    #[error("patient information in a community group")]
    PatientInfoInCommunityGroup,
    /// Rule 3: a care-plan question without a care manager in the group.
    #[error("no care manager in the group")]
    NoCareManager,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// An upload past `max_attachment_bytes`.
    #[error("attachment too large")]
    AttachmentTooLarge(u64),
    #[error("unsupported attachment type")]
    UnsupportedAttachmentType,
    #[error("attachment unreadable: {0}")]
    AttachmentUnreadable(&'static str),
    #[error("attachments not allowed in a community group")]
    AttachmentsNotAllowedInCommunityGroup,
    #[error("too many uploads at once")]
    TooManyUploads(Duration),
    #[error("conflict: {0:?}")]
    Conflict(Conflict),
    #[error("database unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn field(field: &'static str, problem: &'static str) -> Self {
        Self::Validation(vec![FieldError::new(field, problem)])
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }

    /// The wire body, for transports other than an HTTP response (WebSocket error frames).
    pub fn body(&self) -> ErrorBody {
        if let Self::Internal(cause) = self {
            tracing::error!(error = ?cause, "request failed");
        }
        self.status_and_body().1
    }

    fn status_and_body(&self) -> (StatusCode, ErrorBody) {
        use ErrorCode as C;
        // The message in the request's language, from the catalogue (locales/server.*.ftl).
        let lang = crate::catalogue::current();
        let text = |key: &str| crate::catalogue::text_in(lang, key, None);
        let text_with = |key: &str, name: &str, value: &str| crate::catalogue::text_in(lang, key, Some((name, value)));
        let (code, message) = match self {
            Self::Malformed(why) => (C::MalformedRequest, text_with("server-malformed-request", "detail", why)),
            Self::Validation(_) => (C::ValidationFailed, text("server-validation-failed")),
            Self::UnsupportedMediaType => (C::UnsupportedMediaType, text("server-unsupported-media-type")),
            Self::PayloadTooLarge => (C::PayloadTooLarge, text("server-payload-too-large")),
            Self::Unauthenticated => (C::Unauthenticated, text("server-unauthenticated")),
            Self::InvalidCredentials => (C::InvalidCredentials, text("server-invalid-credentials")),
            Self::TotpRequired => (C::TotpRequired, text("server-totp-required")),
            Self::TotpInvalid => (C::TotpInvalid, text("server-totp-invalid")),
            Self::Pending(PendingStep::ChangePassword) => {
                (C::PasswordChangeRequired, text("server-password-change-required"))
            }
            Self::Pending(PendingStep::EnrollTotp) => {
                (C::TotpEnrollmentRequired, text("server-totp-enrollment-required"))
            }
            Self::PasswordTooWeak(_) => (C::PasswordTooWeak, text("server-password-too-weak")),
            Self::SetupTokenInvalid => (C::SetupTokenInvalid, text("server-setup-token-invalid")),
            Self::AccountDisabled => (C::AccountDisabled, text("server-account-disabled")),
            Self::TooManyAttempts(_) => (C::TooManyAttempts, text("server-too-many-attempts")),
            Self::Forbidden(Denied::NotAnAdministrator) => {
                (C::Forbidden, text("server-forbidden-not-an-administrator"))
            }
            Self::Forbidden(Denied::NotAPhysician) => (C::Forbidden, text("server-forbidden-not-a-physician")),
            Self::Forbidden(Denied::OriginNotAllowed) => (C::Forbidden, text("server-forbidden-origin")),
            Self::Forbidden(Denied::OutsideOfficeNetwork) => (C::Forbidden, text("server-forbidden-office-network")),
            Self::Forbidden(Denied::NotTheAuthor) => (C::Forbidden, text("server-forbidden-not-the-author")),
            Self::Forbidden(Denied::NotAttendingPhysician) => {
                (C::Forbidden, text("server-forbidden-not-attending-physician"))
            }
            Self::ReauthenticationRequired => (C::ReauthenticationRequired, text("server-reauthentication-required")),
            Self::NotFound => (C::NotFound, text("server-not-found")),
            Self::Emergency { .. } => (C::EmergencyUseProhibited, text("server-emergency-use-prohibited")),
            Self::PatientInfoInCommunityGroup => {
                (C::PatientInfoInCommunityGroup, text("server-patient-info-in-community-group"))
            }
            Self::NoCareManager => (C::NoCareManagerInGroup, text("server-no-care-manager-in-group")),
            Self::MethodNotAllowed => (C::MethodNotAllowed, text("server-method-not-allowed")),
            Self::AttachmentTooLarge(_) => (C::PayloadTooLarge, text("server-attachment-too-large")),
            Self::UnsupportedAttachmentType => {
                (C::UnsupportedAttachmentType, text("server-unsupported-attachment-type"))
            }
            Self::AttachmentUnreadable(_) => (C::AttachmentUnreadable, text("server-attachment-unreadable")),
            Self::AttachmentsNotAllowedInCommunityGroup => {
                (C::AttachmentsNotAllowedInCommunityGroup, text("server-attachments-not-allowed-in-community-group"))
            }
            Self::TooManyUploads(_) => (C::TooManyUploads, text("server-too-many-uploads")),
            Self::Conflict(Conflict::LoginTaken) => (C::Conflict, text("server-login-taken")),
            Self::Conflict(Conflict::TotpAlreadyEnabled) => (C::Conflict, text("server-totp-already-enabled")),
            Self::Conflict(Conflict::AlreadyMember) => (C::AlreadyMember, text("server-already-member")),
            Self::Conflict(Conflict::GroupNotActive) => (C::GroupNotActive, text("server-group-not-active")),
            Self::Conflict(Conflict::InvitationExpired) => (C::InvitationExpired, text("server-invitation-expired")),
            Self::Conflict(Conflict::StateChanged) => (C::Conflict, text("server-state-changed")),
            Self::Target(TargetRefused::ConsentRequired) => (C::ConsentRequired, text("server-consent-required")),
            Self::Target(TargetRefused::OutsideConsentScope) => {
                (C::OutsideConsentScope, text("server-outside-consent-scope"))
            }
            Self::Target(TargetRefused::NotAPhysician) => {
                (C::ValidationFailed, text("server-handover-not-a-physician"))
            }
            Self::Target(TargetRefused::AccountDisabled) => (C::ValidationFailed, text("server-target-disabled")),
            Self::Target(TargetRefused::NotAnActiveMember) => {
                (C::ValidationFailed, text("server-handover-not-an-active-member"))
            }
            Self::Unavailable(_) => (C::Unavailable, text("server-unavailable")),
            Self::Internal(_) => (C::Internal, text("server-internal")),
        };
        // The status follows from the code alone (protocol::ErrorCode::guide, docs/errors.md).
        let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = ErrorBody::new(code, message);
        match self {
            Self::Validation(fields) => {
                for f in fields {
                    body = body.with_field(f.field, f.problem);
                }
            }
            Self::PasswordTooWeak(problem) => body = body.with_field("new_password", *problem),
            Self::TooManyAttempts(wait) => {
                body = body.with_field("retry_after_seconds", wait.as_secs().max(1).to_string());
            }
            Self::Conflict(Conflict::LoginTaken) => body = body.with_field("login", "taken"),
            Self::Emergency { matched, phone } => {
                body = body.with_field("matched", matched.join(","));
                if let Some(phone) = phone {
                    body = body.with_field("attending_physician_phone", phone.clone());
                }
            }
            // Who may: a client says it in its own words ("only administrators …").
            Self::Forbidden(denied) => {
                let required = match denied {
                    Denied::NotAnAdministrator => "administrator",
                    Denied::NotAPhysician => "physician",
                    Denied::NotAttendingPhysician => "attending_physician",
                    Denied::NotTheAuthor => "author",
                    Denied::OriginNotAllowed => "allowed_origin",
                    Denied::OutsideOfficeNetwork => "office_network",
                };
                body = body.with_field("required", required);
            }
            Self::Target(TargetRefused::NotAPhysician) => body = body.with_field("user", "not_a_physician"),
            Self::Target(TargetRefused::AccountDisabled) => body = body.with_field("user", "disabled"),
            Self::Target(TargetRefused::NotAnActiveMember) => body = body.with_field("user", "not_an_active_member"),
            Self::AttachmentTooLarge(limit) => body = body.with_field("limit_bytes", limit.to_string()),
            Self::UnsupportedAttachmentType => body = body.with_field("accepted", "jpeg,png,webp,pdf"),
            Self::AttachmentUnreadable(reason) => body = body.with_field("reason", *reason),
            Self::TooManyUploads(wait) => {
                body = body.with_field("retry_after_seconds", wait.as_secs().max(1).to_string());
            }
            _ => {}
        }
        (status, body)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(c) => Self::Conflict(c),
            StoreError::Unavailable(_) => Self::Unavailable(e.into()),
            other => Self::Internal(other.into()),
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self::Validation(vec![e])
    }
}

impl From<GroupDenied> for ApiError {
    fn from(d: GroupDenied) -> Self {
        match d {
            GroupDenied::NotFound => Self::NotFound,
            GroupDenied::Forbidden => Self::Forbidden(Denied::NotAttendingPhysician),
            GroupDenied::NotActive => Self::Conflict(Conflict::GroupNotActive),
        }
    }
}

impl From<TargetRefused> for ApiError {
    fn from(t: TargetRefused) -> Self {
        Self::Target(t)
    }
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        Self::Forbidden(d)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(cause) => tracing::error!(error = ?cause, "request failed"),
            Self::Unavailable(cause) => crate::telemetry::database_unavailable(cause),
            _ => {}
        }
        let (status, body) = self.status_and_body();
        let mut response = (status, axum::Json(body)).into_response();
        if let Self::TooManyAttempts(wait) | Self::TooManyUploads(wait) = &self
            && let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}
