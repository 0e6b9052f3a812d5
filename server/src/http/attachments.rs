//! Attachments over HTTP: upload a file to a patient group, then reference it from a post; download it (or
//! an image's thumbnail) as an active member. Everyone else — administrators included — gets `not_found`.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use renkei_protocol::{Attachment, AttachmentLimits, AttachmentType, ErrorBody};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::ApiQuery;
use super::groups::authorized;
use crate::attachments::{Refused, clean, sanitize_name};
use crate::audit::{Actor, Audit, action};
use crate::auth::Member as Caller;
use crate::domain;
use crate::error::ApiError;
use crate::policy::attachments::{self as policy, SharedBy};
use crate::policy::groups::GroupAction;
use crate::state::AppState;
use crate::store::{AttachmentRecord, NewAttachment};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload))
        .routes(routes!(download))
        .routes(routes!(thumbnail))
        .routes(routes!(limits))
}

/// What this server accepts: a client checks a file against it before uploading.
#[utoipa::path(get, path = "/api/v1/attachments/limits", tag = "posts", security(("bearer" = [])),
    responses((status = 200, body = AttachmentLimits)))]
async fn limits(State(state): State<AppState>, _caller: Caller) -> axum::Json<AttachmentLimits> {
    axum::Json(AttachmentLimits {
        max_bytes: state.config.max_attachment_bytes,
        max_per_post: renkei_protocol::MAX_ATTACHMENTS_PER_POST,
        types: AttachmentType::ALL.to_vec(),
    })
}

/// How long a client told `too_many_uploads` should wait.
const UPLOAD_RETRY: Duration = Duration::from_secs(2);

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    /// The file's name on the uploader's device (sanitised before it is stored).
    name: Option<String>,
}

/// Uploads a file to a patient group: the raw bytes as the body (any `Content-Type`: the type is decided
/// from the content). JPEG, PNG and WebP images are stored cleaned of all metadata (GPS included), upright,
/// with a thumbnail; PDFs as uploaded. Reference the answer's `id` from a post within 12 hours.
#[utoipa::path(post, path = "/api/v1/groups/{id}/attachments", tag = "posts", security(("bearer" = [])),
    params(("id" = Uuid, Path), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the file's bytes"),
    responses((status = 201, body = Attachment),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, axum::Json<Attachment>), ApiError> {
    let (group, _) = authorized(&state, &caller, &id, GroupAction::Post).await?;
    if !policy::may_attach_in(group.kind) {
        return Err(ApiError::AttachmentsNotAllowedInCommunityGroup);
    }
    let limit = state.config.max_attachment_bytes;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        drain(body, limit.saturating_add(DRAIN_BYTES)).await;
        return Err(ApiError::AttachmentTooLarge(limit));
    }
    // The permit bounds this node's memory: each upload holds its bytes and then its pixels.
    let Ok(_permit) = state.uploads.clone().try_acquire_owned() else {
        // Read and dropped (no memory held), so the client reads the 429 rather than a reset connection.
        drain(body, limit.saturating_add(DRAIN_BYTES)).await;
        return Err(ApiError::TooManyUploads(UPLOAD_RETRY));
    };
    let bytes = read_limited(body, limit).await?;
    if bytes.is_empty() {
        return Err(ApiError::field("body", "empty"));
    }
    let max_pixels = state.config.max_attachment_pixels;
    let cleaned = tokio::task::spawn_blocking(move || clean(&bytes, max_pixels))
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("cleaning an upload: {e}")))?
        .map_err(|refused| match refused {
            Refused::UnsupportedType => ApiError::UnsupportedAttachmentType,
            Refused::TruncatedOrCorrupt => ApiError::AttachmentUnreadable("truncated_or_corrupt"),
            Refused::TooManyPixels => ApiError::AttachmentUnreadable("too_many_pixels"),
        })?;
    let name = sanitize_name(query.name.as_deref().unwrap_or(""), cleaned.kind);
    let new = NewAttachment {
        id: Uuid::now_v7(),
        group_id: group.id,
        uploader_id: caller.0.account.id(),
        kind: cleaned.kind,
        name,
        content: cleaned.content,
        width: cleaned.width,
        height: cleaned.height,
        thumbnail: cleaned.thumbnail,
    };
    // Counts and types only: never the name, which may carry a patient's.
    let details = serde_json::json!({ "attachment": new.id, "type": new.kind.as_str(), "size": new.content.len() });
    let entry = Audit::entry(action::ATTACHMENT_UPLOADED, &Actor::from(&caller.0), Some(group.id), None, details);
    let attachment = state.store.insert_attachment(&new, &entry, domain::now()).await?;
    Ok((StatusCode::CREATED, axum::Json(attachment)))
}

/// Reads a body to its end, refusing it as soon as it passes `limit` bytes. A body cut off mid-way is an
/// error, and nothing of it is kept.
async fn read_limited(body: Body, limit: u64) -> Result<Vec<u8>, ApiError> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::Malformed(format!("the upload was cut off: {e}")))?;
        if (bytes.len() + chunk.len()) as u64 > limit {
            drop(bytes);
            drain_stream(stream, DRAIN_BYTES).await;
            return Err(ApiError::AttachmentTooLarge(limit));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// A refused upload's remaining bytes read and dropped, up to this many more (and for at most
/// [`DRAIN_TIME`]): a client still sending then reads the typed `413` instead of a reset connection. A
/// larger body is cut off.
const DRAIN_BYTES: u64 = 8 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(5);

async fn drain(body: Body, at_most: u64) {
    drain_stream(body.into_data_stream(), at_most).await;
}

async fn drain_stream(mut stream: axum::body::BodyDataStream, at_most: u64) {
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut seen = 0u64;
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.len() as u64;
            if seen > at_most {
                break;
            }
        }
    })
    .await;
}

/// A file of the group, for an active member: when a post that shares it is not deleted, or to its
/// uploader before any post shares it. Otherwise `not_found`, as for a file that does not exist.
async fn visible(state: &AppState, caller: &Caller, id: &str, file: &str) -> Result<AttachmentRecord, ApiError> {
    let (group, _) = authorized(state, caller, id, GroupAction::View).await?;
    let file = Uuid::parse_str(file).map_err(|_| ApiError::NotFound)?;
    let record = state.store.attachment(group.id, file).await?.ok_or(ApiError::NotFound)?;
    let post = crate::posting::shared_by(state, &record).await?;
    let shared = post.as_ref().map(SharedBy::from);
    if !policy::may_see(record.uploader_id, shared, caller.0.account.id()) {
        return Err(ApiError::NotFound);
    }
    Ok(record)
}

async fn serve(
    state: &AppState,
    caller: &Caller,
    record: &AttachmentRecord,
    thumbnail: bool,
) -> Result<Response, ApiError> {
    let a = &record.attachment;
    let bytes = state.store.attachment_bytes(a.id, thumbnail).await?.ok_or(ApiError::NotFound)?;
    // Every download is a read of patient data: audited like a page of posts.
    let details = serde_json::json!({ "attachment": a.id, "thumbnail": thumbnail });
    state.audit.record(action::ATTACHMENT_READ, &Actor::from(&caller.0), Some(record.group_id), None, details).await?;
    let media_type = if thumbnail { AttachmentType::Jpeg.media_type() } else { a.kind.media_type() };
    // Cleaned images and thumbnails may be shown in the page; anything else is only ever downloaded.
    let disposition = if a.kind.is_image() { "inline" } else { "attachment" };
    let mut response = (StatusCode::OK, bytes).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    let value = format!("{disposition}; filename*=UTF-8''{}", percent_encode(&a.name));
    if let Ok(v) = HeaderValue::from_str(&value) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// RFC 5987 percent-encoding of a file name (everything but unreserved ASCII).
fn percent_encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Downloads a file: an image inline (it was cleaned), a PDF as an attachment.
#[utoipa::path(get, path = "/api/v1/groups/{id}/attachments/{attachment}", tag = "posts", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("attachment" = Uuid, Path)),
    responses((status = 200, description = "the file's bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 403, description = "outside the networks the caller's office allows", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn download(
    State(state): State<AppState>,
    caller: Caller,
    client: crate::auth::ClientInfo,
    Path((id, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let record = visible(&state, &caller, &id, &file).await?;
    // Rule 7: an office may keep its members' downloads to its own networks.
    let office = state.store.office_rules(&caller.0.account.person().organisation).await?;
    if !crate::policy::offices::may_download_from(office.as_ref(), client.addr.parse().ok()) {
        return Err(ApiError::Forbidden(crate::policy::Denied::OutsideOfficeNetwork));
    }
    serve(&state, &caller, &record, false).await
}

/// An image's thumbnail (JPEG, at most 320 pixels a side).
#[utoipa::path(get, path = "/api/v1/groups/{id}/attachments/{attachment}/thumbnail", tag = "posts",
    security(("bearer" = [])), params(("id" = Uuid, Path), ("attachment" = Uuid, Path)),
    responses((status = 200, description = "a JPEG", content_type = "image/jpeg", body = Vec<u8>),
        (status = 404, body = ErrorBody)))]
async fn thumbnail(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let record = visible(&state, &caller, &id, &file).await?;
    serve(&state, &caller, &record, true).await
}
