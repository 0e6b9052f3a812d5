//! What an uploaded file becomes before it is stored: its type decided from its first bytes (never from its
//! name or declared type), an image decoded within limits, turned upright by its EXIF orientation and
//! encoded afresh — which leaves every metadata segment behind (EXIF with its GPS position and device
//! serial, XMP, IPTC, ICC profiles, comments) — with a thumbnail for phones; a PDF kept as uploaded (it is
//! only ever served as a download). The upload limits (size, concurrent uploads) are the HTTP layer's.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits};
use renkei_protocol::{AttachmentType, MAX_ATTACHMENT_NAME_CHARS};
use unicode_normalization::UnicodeNormalization;

/// Longest side of a thumbnail, in pixels.
pub const THUMBNAIL_SIDE: u32 = 320;
/// JPEG quality of a cleaned photo (visually lossless for wound photos) and of a thumbnail.
const PHOTO_QUALITY: u8 = 90;
const THUMBNAIL_QUALITY: u8 = 80;

/// Why a file is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("not an accepted type")]
    UnsupportedType,
    #[error("truncated or corrupt")]
    TruncatedOrCorrupt,
    #[error("more pixels than allowed")]
    TooManyPixels,
}

/// A file as it will be stored.
#[derive(Debug)]
pub struct Cleaned {
    pub kind: AttachmentType,
    pub content: Vec<u8>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub thumbnail: Option<Vec<u8>>,
}

/// The type of a file, from its magic bytes.
pub fn sniff(bytes: &[u8]) -> Option<AttachmentType> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(AttachmentType::Jpeg)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(AttachmentType::Png)
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some(AttachmentType::Webp)
    } else if bytes.starts_with(b"%PDF-") {
        Some(AttachmentType::Pdf)
    } else {
        None
    }
}

/// Checks and cleans an uploaded file (CPU-bound: call it off the async threads). Images of more than
/// `max_pixels` are refused before any pixel is decoded.
pub fn clean(bytes: &[u8], max_pixels: u64) -> Result<Cleaned, Refused> {
    let kind = sniff(bytes).ok_or(Refused::UnsupportedType)?;
    if kind == AttachmentType::Pdf {
        // A PDF is never rendered by renkei: stored as uploaded, served only as a download.
        return Ok(Cleaned { kind, content: bytes.to_vec(), width: None, height: None, thumbnail: None });
    }
    let format = match kind {
        AttachmentType::Jpeg => image::ImageFormat::Jpeg,
        AttachmentType::Png => image::ImageFormat::Png,
        AttachmentType::Webp => image::ImageFormat::WebP,
        AttachmentType::Pdf => unreachable!("handled above"),
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    // Decoding needs at most 4 bytes a pixel (RGBA8) plus the decoder's own buffers.
    limits.max_alloc = Some(max_pixels.saturating_mul(4).saturating_add(64 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(refusal)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(Refused::TooManyPixels);
    }
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut picture = DynamicImage::from_decoder(decoder).map_err(refusal)?;
    picture.apply_orientation(orientation);
    let (content, kind) = if kind == AttachmentType::Png {
        (encode_png(&picture)?, AttachmentType::Png)
    } else {
        // A WebP photo is stored as JPEG: the encoder at hand writes only lossless WebP, far larger.
        (encode_jpeg(&picture, PHOTO_QUALITY)?, AttachmentType::Jpeg)
    };
    let thumbnail = encode_jpeg(&picture.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE), THUMBNAIL_QUALITY)?;
    Ok(Cleaned {
        kind,
        content,
        width: i32::try_from(picture.width()).ok(),
        height: i32::try_from(picture.height()).ok(),
        thumbnail: Some(thumbnail),
    })
}

fn refusal(e: image::ImageError) -> Refused {
    match e {
        image::ImageError::Limits(_) => Refused::TooManyPixels,
        image::ImageError::Unsupported(_) => Refused::UnsupportedType,
        _ => Refused::TruncatedOrCorrupt,
    }
}

fn encode_jpeg(picture: &DynamicImage, quality: u8) -> Result<Vec<u8>, Refused> {
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    picture.to_rgb8().write_with_encoder(encoder).map_err(|_| Refused::TruncatedOrCorrupt)?;
    Ok(out)
}

fn encode_png(picture: &DynamicImage) -> Result<Vec<u8>, Refused> {
    let mut out = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new(&mut out);
    let picture = if picture.color().has_alpha() {
        DynamicImage::ImageRgba8(picture.to_rgba8())
    } else {
        DynamicImage::ImageRgb8(picture.to_rgb8())
    };
    picture.write_with_encoder(encoder).map_err(|_| Refused::TruncatedOrCorrupt)?;
    Ok(out)
}

/// Characters a stored name never keeps: controls, bidirectional overrides and isolates (a name like
/// `gpj.exe` shown backwards as `exe.jpg`), zero-width characters, and path separators.
fn unwanted(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
        || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|')
}

/// The name a file is stored and offered under: the last path component of what the client sent, in NFC,
/// without unwanted characters or leading dots, at most [`MAX_ATTACHMENT_NAME_CHARS`] characters (the
/// extension kept), and ending in the extension of the type found (a JPEG named `scan.pdf` becomes
/// `scan.pdf.jpg`).
pub fn sanitize_name(raw: &str, kind: AttachmentType) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last.nfc().filter(|c| !unwanted(*c)).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim().to_owned();
    let ext = match kind {
        AttachmentType::Jpeg => "jpg",
        AttachmentType::Png => "png",
        AttachmentType::Webp => "webp",
        AttachmentType::Pdf => "pdf",
    };
    let lower = cleaned.to_lowercase();
    let has_ext = match kind {
        AttachmentType::Jpeg => lower.ends_with(".jpg") || lower.ends_with(".jpeg"),
        _ => lower.ends_with(&format!(".{ext}")),
    };
    let stem = if cleaned.is_empty() { "attachment".to_owned() } else { cleaned };
    let (stem, suffix) = if has_ext {
        let dot = stem.rfind('.').unwrap_or(stem.len());
        (stem[..dot].to_owned(), stem[dot..].to_owned())
    } else {
        (stem, format!(".{ext}"))
    };
    let room = MAX_ATTACHMENT_NAME_CHARS.saturating_sub(suffix.chars().count()).max(1);
    let stem: String = stem.chars().take(room).collect();
    format!("{stem}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_paths_controls_and_overrides_and_keep_the_true_extension() {
        assert_eq!(sanitize_name("../../etc/passwd", AttachmentType::Pdf), "passwd.pdf");
        assert_eq!(sanitize_name("C:\\Users\\a\\傷の写真.JPG", AttachmentType::Jpeg), "傷の写真.JPG");
        assert_eq!(sanitize_name("photo\u{202E}gpj.exe", AttachmentType::Jpeg), "photogpj.exe.jpg");
        assert_eq!(sanitize_name("a\u{0}b\nc.png", AttachmentType::Png), "abc.png");
        assert_eq!(sanitize_name("...", AttachmentType::Png), "attachment.png");
        assert_eq!(sanitize_name("", AttachmentType::Pdf), "attachment.pdf");
        assert_eq!(sanitize_name("scan.pdf", AttachmentType::Jpeg), "scan.pdf.jpg");
        let long = sanitize_name(&format!("{}.pdf", "あ".repeat(500)), AttachmentType::Pdf);
        assert_eq!(long.chars().count(), MAX_ATTACHMENT_NAME_CHARS);
        assert!(long.ends_with(".pdf"));
    }

    #[test]
    fn the_type_comes_from_the_content() {
        assert_eq!(sniff(b"%PDF-1.7\n"), Some(AttachmentType::Pdf));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(AttachmentType::Jpeg));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(AttachmentType::Webp));
        assert_eq!(sniff(b"\0\0\0\x18ftypheic"), None);
        assert_eq!(sniff(b"<html>"), None);
        assert_eq!(clean(b"GIF89a", 1_000_000).unwrap_err(), Refused::UnsupportedType);
    }
}
