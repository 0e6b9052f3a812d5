//! Attachments: wound photos and documents shared in a patient group.
//!
//! A file is uploaded first (`POST /api/v1/groups/{id}/attachments`, the raw bytes as the body), then a
//! post references it by id. Its type is decided from its content, never from its name or declared type;
//! images are stored cleaned of every metadata segment (GPS above all), upright, with a thumbnail.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Most attachments one post may reference.
pub const MAX_ATTACHMENTS_PER_POST: usize = 10;

/// Longest stored file name, in characters (longer names are shortened, keeping the extension).
pub const MAX_ATTACHMENT_NAME_CHARS: usize = 120;

wire_enum!(
    /// What the server found the content to be (by its magic bytes). Images are served inline once cleaned;
    /// a PDF only ever as a download.
    AttachmentType { Jpeg = "jpeg", Png = "png", Webp = "webp", Pdf = "pdf" }
);

impl AttachmentType {
    /// The media type the file is served with.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
            Self::Webp => "image/webp",
            Self::Pdf => "application/pdf",
        }
    }

    pub fn is_image(self) -> bool {
        self != Self::Pdf
    }
}

/// An uploaded file as every member sees it. Its bytes are at
/// `/api/v1/groups/{group_id}/attachments/{id}` (and its thumbnail, for images, at `…/{id}/thumbnail`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Attachment {
    pub id: Uuid,
    /// The uploader's file name, sanitised (no path, no control or bidirectional characters).
    pub name: String,
    #[serde(rename = "type")]
    pub kind: AttachmentType,
    /// Bytes as stored (for an image: after cleaning).
    pub size: i64,
    /// Pixels, for images.
    #[serde(default)]
    pub width: Option<i32>,
    #[serde(default)]
    pub height: Option<i32>,
}

/// What this server accepts, so a client can refuse a file before sending megabytes over a poor signal
/// (`GET /api/v1/attachments/limits`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttachmentLimits {
    /// Largest file, in bytes.
    pub max_bytes: u64,
    /// Most files one post may share.
    pub max_per_post: usize,
    /// The accepted types.
    pub types: Vec<AttachmentType>,
}
