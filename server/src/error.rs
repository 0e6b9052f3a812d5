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
        let (code, message) = match self {
            Self::Malformed(why) => (C::MalformedRequest, format!("malformed request: {why}")),
            Self::Validation(_) => (C::ValidationFailed, "some fields are invalid".into()),
            Self::UnsupportedMediaType => (C::UnsupportedMediaType, "expected Content-Type: application/json".into()),
            Self::PayloadTooLarge => (C::PayloadTooLarge, "request body too large".into()),
            Self::Unauthenticated => (C::Unauthenticated, "missing, invalid or expired session token".into()),
            Self::InvalidCredentials => (C::InvalidCredentials, "wrong login or password".into()),
            Self::TotpRequired => (C::TotpRequired, "a TOTP code is required".into()),
            Self::TotpInvalid => (C::TotpInvalid, "the TOTP code is wrong or was already used".into()),
            Self::Pending(PendingStep::ChangePassword) => {
                (C::PasswordChangeRequired, "change the initial password first".into())
            }
            Self::Pending(PendingStep::EnrollTotp) => {
                (C::TotpEnrollmentRequired, "enrol a second factor (TOTP) first".into())
            }
            Self::PasswordTooWeak(_) => (C::PasswordTooWeak, "the new password does not meet the policy".into()),
            Self::SetupTokenInvalid => (C::SetupTokenInvalid, "the setup token is unknown, expired or used".into()),
            Self::AccountDisabled => (C::AccountDisabled, "this account is disabled".into()),
            Self::TooManyAttempts(_) => (C::TooManyAttempts, "too many failed attempts".into()),
            Self::Forbidden(Denied::NotAnAdministrator) => (C::Forbidden, "only administrators may do this".into()),
            Self::Forbidden(Denied::NotAPhysician) => (C::Forbidden, "only a physician opens a patient group".into()),
            Self::Forbidden(Denied::OriginNotAllowed) => (C::Forbidden, "this origin may not open a WebSocket".into()),
            Self::Forbidden(Denied::OutsideOfficeNetwork) => {
                (C::Forbidden, "your office allows downloading files only from its own network".into())
            }
            Self::Forbidden(Denied::NotTheAuthor) => (C::Forbidden, "only the author edits or deletes a post".into()),
            Self::Forbidden(Denied::NotAttendingPhysician) => {
                (C::Forbidden, "only the attending physician may do this".into())
            }
            Self::ReauthenticationRequired => (
                C::ReauthenticationRequired,
                "enter your password again (POST /api/v1/auth/reauthenticate), then repeat the request".into(),
            ),
            Self::NotFound => (C::NotFound, "not found".into()),
            Self::Emergency { .. } => (
                C::EmergencyUseProhibited,
                "緊急・急ぎの連絡は renkei ではなく電話でお願いします。Emergencies go by telephone, never through \
                 renkei. If this is not an emergency, send it again confirming so."
                    .into(),
            ),
            Self::PatientInfoInCommunityGroup => (
                C::PatientInfoInCommunityGroup,
                "全体グループでは個別の患者情報を共有できません。患者グループに投稿してください。Individual patient \
                 information is not shared in community groups; post it in the patient's own group."
                    .into(),
            ),
            Self::NoCareManager => (
                C::NoCareManagerInGroup,
                "このグループにはケアマネジャーがいません。There is no care manager in this group.".into(),
            ),
            Self::MethodNotAllowed => (C::MethodNotAllowed, "method not allowed".into()),
            Self::AttachmentTooLarge(_) => (C::PayloadTooLarge, "the file is larger than this server accepts".into()),
            Self::UnsupportedAttachmentType => {
                (C::UnsupportedAttachmentType, "only JPEG, PNG and WebP images and PDF documents are accepted".into())
            }
            Self::AttachmentUnreadable(_) => (C::AttachmentUnreadable, "the image cannot be read".into()),
            Self::AttachmentsNotAllowedInCommunityGroup => (
                C::AttachmentsNotAllowedInCommunityGroup,
                "全体グループには添付できません。Community groups take no attachments.".into(),
            ),
            Self::TooManyUploads(_) => (C::TooManyUploads, "too many uploads at once; retry shortly".into()),
            Self::Conflict(Conflict::LoginTaken) => (C::Conflict, "this login is already taken".into()),
            Self::Conflict(Conflict::TotpAlreadyEnabled) => {
                (C::Conflict, "TOTP is already enabled for this account".into())
            }
            Self::Conflict(Conflict::AlreadyMember) => {
                (C::AlreadyMember, "already a member of, or invited to, this group".into())
            }
            Self::Conflict(Conflict::GroupNotActive) => {
                (C::GroupNotActive, "the group is archived or read-only".into())
            }
            Self::Conflict(Conflict::InvitationExpired) => (C::InvitationExpired, "the invitation has expired".into()),
            Self::Conflict(Conflict::StateChanged) => {
                (C::Conflict, "the group changed meanwhile; reload and retry".into())
            }
            Self::Target(TargetRefused::ConsentRequired) => {
                (C::ConsentRequired, "record the patient's or family's consent first".into())
            }
            Self::Target(TargetRefused::OutsideConsentScope) => {
                (C::OutsideConsentScope, "outside the scope of the consent in force".into())
            }
            Self::Target(TargetRefused::NotAPhysician) => {
                (C::ValidationFailed, "a group is handed over to a physician only".into())
            }
            Self::Target(TargetRefused::AccountDisabled) => (C::ValidationFailed, "that account is disabled".into()),
            Self::Target(TargetRefused::NotAnActiveMember) => {
                (C::ValidationFailed, "a group is handed over to another physician who is an active member".into())
            }
            Self::Unavailable(_) => (C::Unavailable, "database unavailable, retry".into()),
            Self::Internal(_) => (C::Internal, "internal error".into()),
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
