//! `attachments`: photos uploaded while posts go on.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use renkei_protocol::{ClientFrame, ServerFrame};
use uuid::Uuid;

use crate::report::{Report, histogram};
use crate::servers::{ProcWatch, Servers};

use super::*;

#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct AttachmentsArgs {
    /// Sequential uploads of the photo, each timed to its answer (cleaned, thumbnail made, stored).
    #[arg(long, default_value_t = 10)]
    pub uploads: usize,
    /// Uploads started at once (the server cleans `max_concurrent_uploads` at a time and answers the rest
    /// `429`, which they retry after `Retry-After`).
    #[arg(long, default_value_t = 20)]
    pub concurrent: usize,
    /// Posts in the posting mix (over one connection per 380, each within its burst allowance).
    #[arg(long, default_value_t = 20_000)]
    pub posts: usize,
    /// One post in this many shares one of the small photos uploaded before (0: none, to compare; the
    /// photos are uploaded all the same).
    #[arg(long, default_value_t = 10)]
    pub photo_every: usize,
}

/// A phone-camera-like JPEG: 4,000 × 3,000 pixels of gradients and grain, about 5 MiB at quality 92.
fn camera_photo() -> Result<Vec<u8>> {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let picture = image::RgbImage::from_fn(4000, 3000, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let grain = (seed % 20) as u32;
        image::Rgb([byte(x / 16 + grain), byte(y / 12 + grain), byte((x + y) / 28)])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92).encode_image(&picture)?;
    Ok(out)
}

/// Uploads a file, retrying after `Retry-After` while the node is busy with other uploads; returns how
/// many times it was turned away.
async fn upload_until_taken(client: &renkei_cli::Client, group: Uuid, photo: &[u8]) -> Result<(Uuid, u64)> {
    let mut refused = 0u64;
    loop {
        match client.upload_attachment(group, "IMG_0001.JPG", photo.to_vec(), None).await {
            Ok(a) => return Ok((a.id, refused)),
            Err(renkei_cli::ClientError::Api { body, .. })
                if body.code == renkei_protocol::ErrorCode::TooManyUploads =>
            {
                refused += 1;
                let wait = body.fields.get("retry_after_seconds").and_then(|s| s.parse().ok()).unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait)).await;
                if refused > 1_000 {
                    bail!("an upload was turned away 1,000 times");
                }
            }
            Err(e) => bail!("upload failed: {e}"),
        }
    }
}

/// `attachments`: a 5 MiB photo's upload, one at a time and many at once (throughput, the server's peak
/// memory), and posting with a photo in one post of ten.
pub async fn attachments(servers: &Servers, run: &str, args: &AttachmentsArgs, report: &mut Report) -> Result<()> {
    report.parameters = serde_json::to_value(args)?;
    let groups = provision_timed(servers, run, 1, 8, report).await?;
    let group = &groups[0];
    let photo = tokio::task::spawn_blocking(camera_photo).await??;
    report.figure("photo size", photo.len() as f64 / f64::from(1 << 20), "MiB", None);

    let watch = ProcWatch::start(servers);
    let mut one = histogram();
    for _ in 0..args.uploads {
        let started = Instant::now();
        upload_until_taken(&group.members[1].client, group.id, &photo).await?;
        let _ = one.record(micros(started.elapsed()).max(1));
    }
    report.latency("one photo: upload → stored, cleaned, thumbnail made", &one);

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..args.concurrent {
        let client = group.members[1 + i % 7].client.clone();
        let (group_id, photo) = (group.id, photo.clone());
        tasks.spawn(async move { upload_until_taken(&client, group_id, &photo).await });
    }
    let mut turned_away = 0;
    while let Some(joined) = tasks.join_next().await {
        turned_away += joined??.1;
    }
    let wall = started.elapsed().as_secs_f64();
    report.figure(&format!("{} photos uploaded at once: all stored after", args.concurrent), wall, "s", None);
    report.figure(
        "upload throughput (many at once)",
        (args.concurrent * photo.len()) as f64 / f64::from(1 << 20) / wall,
        "MiB/s",
        None,
    );
    report.count("uploads turned away with 429 (then retried)", turned_away);
    report.processes = watch.finish();

    // Posting with a small photo in one post of ten: the photos are uploaded first, as a phone does.
    let small = {
        let picture = image::RgbImage::from_fn(640, 480, |x, y| image::Rgb([byte(x), byte(y), 90]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85).encode_image(&picture)?;
        out
    };
    // Seven posters with several connections each, every connection within its burst allowance (400
    // frames), each sharing photos its member uploaded.
    let connections = args.posts.div_ceil(380).max(7);
    let per_poster = args.posts.div_ceil(connections);
    let mut prepared = Vec::new();
    for c in 0..connections {
        let client = group.members[1 + c % 7].client.clone();
        let mut files = Vec::new();
        // The same photos are uploaded whatever `--photo-every` (writing them costs the database the
        // same), so runs that share none differ from the others only in the posts.
        for _ in 0..per_poster.div_ceil(10) {
            files.push(upload_until_taken(&client, group.id, &small).await?.0);
        }
        prepared.push((client.connect_live().await?, files));
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let every = args.photo_every;
    for (m, (mut live, files)) in prepared.into_iter().enumerate() {
        let group_id = group.id;
        tasks.spawn(async move {
            let (mut outstanding, mut sent, mut acked) = (0usize, 0usize, 0usize);
            while acked < per_poster {
                while sent < per_poster && outstanding < 64 {
                    let ClientFrame::Post { id, group_id, mut post } =
                        new_post(sent.to_string(), group_id, body(sent as u64, 0, m))
                    else {
                        unreachable!("new_post makes a post frame")
                    };
                    if every > 0 && sent % every == 0 && sent / every < files.len() {
                        post.attachments = vec![files[sent / every]];
                    }
                    live.send(&ClientFrame::Post { id, group_id, post }).await?;
                    sent += 1;
                    outstanding += 1;
                }
                match tokio::time::timeout(Duration::from_secs(30), live.next()).await {
                    Ok(Some(Ok(ServerFrame::Ack { .. }))) => {
                        outstanding -= 1;
                        acked += 1;
                    }
                    Ok(Some(Ok(ServerFrame::Error { code, message, .. }))) => bail!("refused: {code} {message}"),
                    Ok(Some(Ok(_))) => {}
                    _ => bail!("a poster's connection stalled or closed"),
                }
            }
            live.close().await;
            Ok(acked)
        });
    }
    let mut acked = 0;
    while let Some(joined) = tasks.join_next().await {
        acked += joined??;
    }
    let rate = acked as f64 / started.elapsed().as_secs_f64();
    report.figure("posts per second, 64 in flight per connection (see --photo-every)", rate, "posts/s", None);
    report.count("posts acknowledged", acked as u64);
    Ok(())
}
