//! Attachments on both databases: a wound photo reaches the team without its GPS data and upright; the
//! type comes from the content; bad files get typed errors and store nothing; only active members may fetch
//! a file (administrators and outsiders get `not_found`); the upload limits hold; a retried post keeps its
//! file; a deleted post's file is gone; the sweep removes files no post shared.

use std::io::Cursor;
use std::time::Duration;

use renkei_protocol::{AttachmentType, ClientFrame, ErrorCode, PostKind, Profession, ServerFrame, Subscription};
use renkei_tests::care::post;
use renkei_tests::{both_backends, code_of};

/// Written into the test photo's EXIF: it must not survive the upload.
const DEVICE_SERIAL: &str = "SERIAL-7F3A-HOME-OF-PATIENT";

/// A 64×32 JPEG whose EXIF says: rotate 90° clockwise to show it (orientation 6), a GPS position, and a
/// description carrying [`DEVICE_SERIAL`].
fn photo_with_gps() -> Vec<u8> {
    let picture = image::RgbImage::from_fn(64, 32, |x, y| image::Rgb([(x * 4) as u8, (y * 8) as u8, 128]));
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgb8(picture).write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
    // TIFF, little-endian: IFD0 (description, orientation, GPS pointer) at 8, the GPS IFD at 50, text at 68.
    let mut tiff: Vec<u8> = b"II*\0\x08\0\0\0".to_vec();
    let entry = |tag: u16, kind: u16, count: u32, value: [u8; 4]| {
        let mut e = Vec::new();
        e.extend(tag.to_le_bytes());
        e.extend(kind.to_le_bytes());
        e.extend(count.to_le_bytes());
        e.extend(value);
        e
    };
    let text = format!("{DEVICE_SERIAL}\0");
    tiff.extend(3u16.to_le_bytes());
    tiff.extend(entry(0x010E, 2, text.len() as u32, 68u32.to_le_bytes()));
    tiff.extend(entry(0x0112, 3, 1, [6, 0, 0, 0]));
    tiff.extend(entry(0x8825, 4, 1, 50u32.to_le_bytes()));
    tiff.extend(0u32.to_le_bytes());
    assert_eq!(tiff.len(), 50);
    tiff.extend(1u16.to_le_bytes());
    tiff.extend(entry(0x0001, 2, 2, *b"N\0\0\0"));
    tiff.extend(0u32.to_le_bytes());
    assert_eq!(tiff.len(), 68);
    tiff.extend(text.as_bytes());
    let mut app1 = vec![0xFF, 0xE1];
    app1.extend(((2 + 6 + tiff.len()) as u16).to_be_bytes());
    app1.extend(b"Exif\0\0");
    app1.extend(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let picture = image::RgbaImage::from_pixel(width, height, image::Rgba([200, 30, 30, 255]));
    let mut png = Vec::new();
    image::DynamicImage::ImageRgba8(picture).write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A small PNG whose header claims 100,000 × 100,000 pixels (a decompression bomb), with a valid CRC.
fn png_bomb() -> Vec<u8> {
    let mut bytes = png(4, 4);
    // IHDR's data starts at 16: width, height (big-endian); its CRC covers type and data (12..29).
    bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

const PDF: &[u8] = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

both_backends!(
    async fn a_wound_photo_reaches_the_team_upright_and_without_its_gps_data(app: TestApp) {
        let team = app.team().await;
        let uploaded = team.nurse.upload_attachment(team.group, "IMG_0042.JPG", photo_with_gps(), None).await.unwrap();
        assert_eq!(uploaded.kind, AttachmentType::Jpeg);
        // Orientation 6 applied: the 64×32 picture is now 32 wide and 64 high.
        assert_eq!((uploaded.width, uploaded.height), (Some(32), Some(64)));
        assert_eq!(uploaded.name, "IMG_0042.JPG");

        // The bytes as stored in the database: no EXIF segment, no serial, no GPS.
        let store = app.store().await;
        let stored = store.attachment_bytes(uploaded.id, false).await.unwrap().expect("stored");
        let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        assert!(!has(&stored, b"Exif") && !has(&stored, DEVICE_SERIAL.as_bytes()), "metadata left in the stored file");
        assert!(!has(&stored, &[0xFF, 0xE1]), "an APP1 segment survived");
        let decoded = image::load_from_memory(&stored).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (32, 64));
        assert_eq!(stored.len() as i64, uploaded.size);

        // Posted without words, by HTTP; the doctor sees it live on the WebSocket and in the history.
        let mut live = team.doctor.connect_live().await.unwrap();
        live.send(&ClientFrame::Subscribe {
            id: "s".into(),
            groups: vec![Subscription { group_id: team.group, after_seq: 0 }],
        })
        .await
        .unwrap();
        let mut photo = post(PostKind::Update, "", "photo-1");
        photo.attachments = vec![uploaded.id];
        let receipt = team.nurse.post_receipt(team.group, &photo).await.unwrap();
        assert_eq!(receipt.post.attachments, vec![uploaded.clone()]);
        let frame = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let ServerFrame::Post { post } = live.next().await.unwrap().unwrap() {
                    return post;
                }
            }
        })
        .await
        .expect("the post arrives live");
        assert_eq!(frame.attachments, vec![uploaded.clone()]);
        let page = team.doctor.posts(team.group, Some(0), None, 10).await.unwrap();
        assert_eq!(page.posts[0].attachments, vec![uploaded.clone()]);

        // The doctor downloads exactly the stored bytes, and a thumbnail no larger than 320 px.
        let (bytes, name) = team.doctor.attachment(team.group, uploaded.id, false).await.unwrap();
        assert_eq!(bytes, stored);
        assert_eq!(name.as_deref(), Some("IMG_0042.JPG"));
        let (thumb, _) = team.doctor.attachment(team.group, uploaded.id, true).await.unwrap();
        let thumb = image::load_from_memory_with_format(&thumb, image::ImageFormat::Jpeg).unwrap();
        assert!(thumb.width() <= 320 && thumb.height() <= 320);

        // The attending physician's timeline export lists the file with its post.
        let markdown = team.doctor.export_timeline_markdown(team.group).await.unwrap();
        assert!(markdown.contains("- 添付: IMG_0042.JPG（jpeg、"), "{markdown}");
        assert!(markdown.contains(&uploaded.id.to_string()), "{markdown}");
        let json = team.doctor.export_timeline(team.group).await.unwrap();
        assert_eq!(json.posts[0].post.attachments, vec![uploaded.clone()]);

        // Headers: never cached, never sniffed.
        let http = reqwest::Client::new();
        let url = format!("{}/api/v1/groups/{}/attachments/{}", app.base_url, team.group, uploaded.id);
        let token = team.doctor.token().unwrap().expose().to_owned();
        let response = http.get(&url).bearer_auth(&token).send().await.unwrap();
        let h = response.headers();
        assert_eq!(h["content-type"], "image/jpeg");
        assert_eq!(h["cache-control"], "private, no-store");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["content-security-policy"], "default-src 'none'; sandbox");
        assert!(h["content-disposition"].to_str().unwrap().starts_with("inline;"));

        // Every download is audited as a read, with no name in it.
        let filter = renkei_server::store::AuditFilter {
            action: Some("attachment_read".into()),
            limit: 100,
            ..Default::default()
        };
        let reads = store.audit_entries(&filter).await.unwrap();
        assert_eq!(reads.len(), 3);
        assert!(reads.iter().all(|e| !e.details.to_string().contains("IMG_0042")));
        store.close().await;
    }
);

both_backends!(
    async fn the_type_comes_from_the_content_and_bad_files_store_nothing(app: TestApp) {
        let team = app.team().await;
        let nurse = &team.nurse;
        // A PDF named like a photo is a PDF, offered only as a download.
        let pdf = nurse.upload_attachment(team.group, "wound.jpg", PDF.to_vec(), None).await.unwrap();
        assert_eq!((pdf.kind, pdf.name.as_str()), (AttachmentType::Pdf, "wound.jpg.pdf"));
        // A photo named like a PDF is a photo.
        let jpeg = nurse.upload_attachment(team.group, "careplan.pdf", photo_with_gps(), None).await.unwrap();
        assert_eq!((jpeg.kind, jpeg.name.as_str()), (AttachmentType::Jpeg, "careplan.pdf.jpg"));
        // Names lose paths, controls and bidirectional overrides.
        let named =
            nurse.upload_attachment(team.group, "../../etc/\u{202E}fdp.exe\n", PDF.to_vec(), None).await.unwrap();
        assert_eq!(named.name, "fdp.exe.pdf");
        let mut pdf_post = post(PostKind::Update, "ケアプラン", "pdf-1");
        pdf_post.attachments = vec![pdf.id];
        nurse.post(team.group, &pdf_post).await.unwrap();
        let http = reqwest::Client::new();
        let url = format!("{}/api/v1/groups/{}/attachments/{}", app.base_url, team.group, pdf.id);
        let token = nurse.token().unwrap().expose().to_owned();
        let response = http.get(&url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.headers()["content-type"], "application/pdf");
        assert!(response.headers()["content-disposition"].to_str().unwrap().starts_with("attachment;"));
        assert_eq!(response.bytes().await.unwrap().as_ref(), PDF);

        let store = app.store().await;
        let count = || async {
            let filter = renkei_server::store::AuditFilter {
                action: Some("attachment_uploaded".into()),
                limit: 1000,
                ..Default::default()
            };
            store.audit_entries(&filter).await.unwrap().len()
        };
        let before = count().await;
        // Not an accepted type (a GIF, an HTML page, an iPhone HEIC).
        for bytes in [b"GIF89a\x01\0\x01\0".to_vec(), b"<html><script>".to_vec(), b"\0\0\0\x18ftypheic".to_vec()] {
            let r = nurse.upload_attachment(team.group, "x.jpg", bytes, None).await;
            assert_eq!(code_of(r), ErrorCode::UnsupportedAttachmentType);
        }
        // Truncated: the headers of a JPEG and nothing more.
        let truncated = photo_with_gps()[..300].to_vec();
        let r = nurse.upload_attachment(team.group, "cut.jpg", truncated, None).await;
        assert_eq!(code_of(r), ErrorCode::AttachmentUnreadable);
        // A bomb: refused from its header, before a pixel is decoded.
        match nurse.upload_attachment(team.group, "bomb.png", png_bomb(), None).await {
            Err(renkei_cli::ClientError::Api { body, .. }) => {
                assert_eq!(body.code, ErrorCode::AttachmentUnreadable);
                assert_eq!(body.fields.get("reason").map(String::as_str), Some("too_many_pixels"));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        // Empty.
        let r = nurse.upload_attachment(team.group, "empty.jpg", Vec::new(), None).await;
        assert_eq!(code_of(r), ErrorCode::ValidationFailed);
        // 21 MiB: past the 20 MiB limit the server announces, refused before it is sent.
        let limits = nurse.attachment_limits().await.unwrap();
        assert_eq!(limits.max_bytes, 20 << 20);
        let big = vec![0u8; 21 << 20];
        let r = nurse.upload_attachment(team.group, "big.pdf", big, None).await;
        assert_eq!(code_of(r), ErrorCode::PayloadTooLarge);
        assert_eq!(count().await, before, "a refused file leaves no trace");
        store.close().await;
    }
);

both_backends!(
    async fn only_active_members_see_a_file_and_only_its_uploader_may_share_it(app: TestApp) {
        let team = app.team().await;
        let (_, outsider) = app.member(&team.admin, "ns-other", Profession::Nurse).await;
        let file = team.nurse.upload_attachment(team.group, "a.png", png(8, 8), None).await.unwrap();
        assert_eq!(file.kind, AttachmentType::Png);
        // Before a post shares it, only its uploader sees it.
        team.nurse.attachment(team.group, file.id, false).await.unwrap();
        assert_eq!(code_of(team.doctor.attachment(team.group, file.id, false).await), ErrorCode::NotFound);
        // Nobody else may share it.
        let mut theirs = post(PostKind::Update, "これは私の", "dr-1");
        theirs.attachments = vec![file.id];
        assert_eq!(code_of(team.doctor.post(team.group, &theirs).await), ErrorCode::ValidationFailed);

        let mut mine = post(PostKind::Update, "褥瘡の写真です", "ns-1");
        mine.attachments = vec![file.id];
        let first = team.nurse.post(team.group, &mine).await.unwrap();
        // A retried send is answered with the original post, file and all.
        let again = team.nurse.post(team.group, &mine).await.unwrap();
        assert_eq!((again.seq, again.attachments.clone()), (first.seq, first.attachments.clone()));
        // A second post cannot take the same file.
        let mut second = post(PostKind::Update, "もう一度", "ns-2");
        second.attachments = vec![file.id];
        assert_eq!(code_of(team.nurse.post(team.group, &second).await), ErrorCode::ValidationFailed);
        // A file id that does not exist, and too many files.
        second.attachments = vec![uuid::Uuid::now_v7()];
        assert_eq!(code_of(team.nurse.post(team.group, &second).await), ErrorCode::ValidationFailed);
        second.attachments = (0..11).map(|_| uuid::Uuid::now_v7()).collect();
        assert_eq!(code_of(team.nurse.post(team.group, &second).await), ErrorCode::ValidationFailed);
        assert_eq!(team.nurse.posts(team.group, Some(0), None, 10).await.unwrap().last_seq, 1);

        team.doctor.attachment(team.group, file.id, false).await.unwrap();
        // Outsiders and administrators learn nothing, not even that the group exists.
        for who in [&outsider, &team.admin] {
            assert_eq!(code_of(who.attachment(team.group, file.id, false).await), ErrorCode::NotFound);
            assert_eq!(code_of(who.attachment(team.group, file.id, true).await), ErrorCode::NotFound);
            let r = who.upload_attachment(team.group, "b.png", png(4, 4), None).await;
            assert_eq!(code_of(r), ErrorCode::NotFound);
        }
        // Through another group's path: not found.
        let other = team.doctor.open_group(&renkei_tests::care::patient("田中 一郎 様", "田中 一郎")).await.unwrap();
        assert_eq!(code_of(team.doctor.attachment(other.id, file.id, false).await), ErrorCode::NotFound);

        // A deleted post takes its file with it.
        team.nurse.delete_post(team.group, first.seq).await.unwrap();
        let page = team.doctor.posts(team.group, Some(0), None, 10).await.unwrap();
        assert!(page.posts[0].attachments.is_empty());
        assert_eq!(code_of(team.doctor.attachment(team.group, file.id, false).await), ErrorCode::NotFound);
        assert_eq!(code_of(team.nurse.attachment(team.group, file.id, true).await), ErrorCode::NotFound);

        // Community groups take no attachments (rule 4).
        let city = team.admin.admin_create_community_group("武蔵野市 全体").await.unwrap();
        team.admin.admin_add_community_member(city.id, "ns-sato").await.unwrap();
        let r = team.nurse.upload_attachment(city.id, "c.png", png(4, 4), None).await;
        assert_eq!(code_of(r), ErrorCode::AttachmentsNotAllowedInCommunityGroup);
    }
);

both_backends!(
    config = |c: &mut renkei_server::Config| c.max_concurrent_uploads = 1;
    async fn uploads_beyond_the_limit_wait_and_a_cut_off_upload_stores_nothing(app: TestApp) {
        let team = app.team().await;
        let url = format!("{}/api/v1/groups/{}/attachments?name=slow.pdf", app.base_url, team.group);
        let token = team.nurse.token().unwrap().expose().to_owned();
        // An upload that sends its first bytes and then stalls holds the node's one place. It may itself be
        // turned away, if it arrives while a probe below holds the place: then another one is started.
        let http = reqwest::Client::new();
        let stall = || {
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
            tx.try_send(Ok(PDF[..10].to_vec())).unwrap();
            let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
            let (http, url, token) = (http.clone(), url.clone(), token.clone());
            let task = tokio::spawn(async move {
                http.post(url).bearer_auth(token).body(reqwest::Body::wrap_stream(stream)).send().await
            });
            (tx, task)
        };
        let (mut tx, mut slow) = stall();
        // A second upload is turned away at once, with a time to come back.
        let refused = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let r = http.post(&url).bearer_auth(&token).body(PDF.to_vec()).send().await.unwrap();
                if r.status() == 429 {
                    return r;
                }
                // The stalled upload may not hold the place yet: what got through is a stored file.
                assert_eq!(r.status(), 201);
                if slow.is_finished() {
                    (tx, slow) = stall();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("a 429 while the slow upload holds the place");
        assert_eq!(refused.headers()["retry-after"], "2");
        let body: renkei_protocol::ErrorBody = refused.json().await.unwrap();
        assert_eq!(body.code, ErrorCode::TooManyUploads);
        // The slow upload is cut off mid-way: refused, nothing of it stored, and its place freed.
        tx.send(Err(std::io::Error::other("the phone lost its signal"))).await.unwrap();
        drop(tx);
        let _ = tokio::time::timeout(Duration::from_secs(10), slow).await.expect("the cut-off upload ends");
        let store = app.store().await;
        let stored_before = stored_whole(&store).await;
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let r = http.post(&url).bearer_auth(&token).body(PDF.to_vec()).send().await.unwrap();
                if r.status() == 201 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the place is freed");
        assert_eq!(stored_whole(&store).await, stored_before + 1);
        store.close().await;
    }
);

/// How many files are stored; each must be a whole PDF (a half-stored upload would not be).
async fn stored_whole(store: &renkei_server::store::Store) -> usize {
    let ids = store.attachment_ids().await.unwrap();
    for id in &ids {
        let bytes = store.attachment_bytes(*id, false).await.unwrap().unwrap();
        assert_eq!(bytes, PDF, "a stored file is whole");
    }
    ids.len()
}

both_backends!(
    async fn the_sweep_removes_files_no_post_shared_and_keeps_the_others(app: TestApp) {
        let team = app.team().await;
        let shared = team.nurse.upload_attachment(team.group, "s.png", png(4, 4), None).await.unwrap();
        let unshared = team.nurse.upload_attachment(team.group, "u.png", png(4, 4), None).await.unwrap();
        let mut p = post(PostKind::Update, "写真", "sw-1");
        p.attachments = vec![shared.id];
        team.nurse.post(team.group, &p).await.unwrap();
        let store = app.store().await;
        // Nothing is old enough yet.
        assert_eq!(
            store
                .remove_unreferenced_attachments(time::OffsetDateTime::now_utc() - time::Duration::days(1))
                .await
                .unwrap(),
            0
        );
        // A day on (the cutoff moved past both uploads): the unshared one goes, with an audit entry.
        let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
        assert_eq!(store.remove_unreferenced_attachments(later).await.unwrap(), 1);
        assert!(store.attachment_bytes(unshared.id, false).await.unwrap().is_none());
        assert!(store.attachment_bytes(shared.id, false).await.unwrap().is_some());
        team.doctor.attachment(team.group, shared.id, false).await.unwrap();
        let filter = renkei_server::store::AuditFilter {
            action: Some("attachments_removed".into()),
            limit: 10,
            ..Default::default()
        };
        let entries = store.audit_entries(&filter).await.unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].details["count"], 1);
        store.close().await;
    }
);

both_backends!(
    config = |c: &mut renkei_server::Config| c.max_attachment_bytes = 64 * 1024;
    async fn the_server_refuses_a_body_past_its_limit_declared_or_streamed(app: TestApp) {
        let team = app.team().await;
        let url = format!("{}/api/v1/groups/{}/attachments?name=big.pdf", app.base_url, team.group);
        let token = team.nurse.token().unwrap().expose().to_owned();
        let http = reqwest::Client::new();
        let mut big = PDF.to_vec();
        big.resize(100 * 1024, b' ');
        // Declared by Content-Length.
        let r = http.post(&url).bearer_auth(&token).body(big.clone()).send().await.unwrap();
        assert_eq!(r.status(), 413);
        let body: renkei_protocol::ErrorBody = r.json().await.unwrap();
        assert_eq!(body.code, ErrorCode::PayloadTooLarge);
        assert_eq!(body.fields.get("limit_bytes").map(String::as_str), Some("65536"));
        // Streamed without a length: refused once past the limit.
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = big.chunks(8 * 1024).map(|c| Ok(c.to_vec())).collect();
        let stream = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
        let r = http.post(&url).bearer_auth(&token).body(stream).send().await.unwrap();
        assert_eq!(r.status(), 413);
        let store = app.store().await;
        assert!(store.attachment_ids().await.unwrap().is_empty());
        store.close().await;
    }
);

both_backends!(
    async fn a_websocket_post_shares_a_file_and_altered_bytes_are_never_served(app: TestApp) {
        let team = app.team().await;
        let file = team.nurse.upload_attachment(team.group, "plan.pdf", PDF.to_vec(), None).await.unwrap();
        let mut live = team.nurse.connect_live().await.unwrap();
        let mut shared = post(PostKind::Update, "", "ws-1");
        shared.attachments = vec![file.id];
        live.send(&ClientFrame::Post { id: "p".into(), group_id: team.group, post: shared }).await.unwrap();
        let ack = tokio::time::timeout(Duration::from_secs(10), live.next()).await.unwrap().unwrap().unwrap();
        let ServerFrame::Ack { seq: Some(seq), .. } = ack else { panic!("expected an ack, got {ack:?}") };
        let page = team.doctor.posts(team.group, Some(0), None, 10).await.unwrap();
        assert_eq!(page.posts[0].seq, seq);
        assert_eq!(page.posts[0].attachments.iter().map(|a| a.id).collect::<Vec<_>>(), vec![file.id]);
        assert_eq!(team.doctor.attachment(team.group, file.id, false).await.unwrap().0, PDF);

        // Someone with write access to the database changes the stored bytes: the SHA-256 kept with them
        // no longer matches, and the file is refused rather than served.
        let sql = "UPDATE attachment_files SET content = $1 WHERE attachment_id = $2";
        let altered = b"%PDF-1.4\n% altered\n%%EOF\n".to_vec();
        match app.backend {
            renkei_tests::Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&app.database_url).await.unwrap();
                sqlx::query(sql).bind(&altered).bind(file.id).execute(&pool).await.unwrap();
                pool.close().await;
            }
            renkei_tests::Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
                sqlx::query(sql).bind(&altered).bind(file.id).execute(&pool).await.unwrap();
                pool.close().await;
            }
        }
        match team.doctor.attachment(team.group, file.id, false).await {
            Err(renkei_cli::ClientError::Api { status, body }) => {
                assert_eq!((status, body.code), (500, ErrorCode::Internal));
            }
            other => panic!("altered bytes were served: {other:?}"),
        }
    }
);

both_backends!(
    async fn an_edit_adds_and_removes_files_and_earlier_versions_keep_theirs(app: TestApp) {
        let team = app.team().await;
        let first = team.nurse.upload_attachment(team.group, "day1.png", png(6, 6), None).await.unwrap();
        let mut p = post(PostKind::Update, "1日目", "ed-1");
        p.attachments = vec![first.id];
        let posted = team.nurse.post(team.group, &p).await.unwrap();
        // A second photo is added, and the first removed, by two edits.
        let second = team.nurse.upload_attachment(team.group, "day2.png", png(6, 6), None).await.unwrap();
        let both = team.nurse.edit_post_files(team.group, posted.seq, "1日目と2日目", &[first.id, second.id]).await;
        assert_eq!(both.unwrap().attachments.iter().map(|a| a.id).collect::<Vec<_>>(), vec![first.id, second.id]);
        let only = team.nurse.edit_post_files(team.group, posted.seq, "", &[second.id]).await.unwrap();
        assert_eq!(only.attachments.iter().map(|a| a.id).collect::<Vec<_>>(), vec![second.id]);
        assert_eq!(only.body.as_deref(), Some(""));
        // Every version keeps the files it shared.
        let history = team.doctor.post_history(team.group, posted.seq).await.unwrap();
        let per_version: Vec<Vec<_>> =
            history.versions.iter().map(|v| v.attachments.iter().map(|a| a.id).collect()).collect();
        assert_eq!(per_version, vec![vec![first.id], vec![first.id, second.id], vec![second.id]]);
        // The doctor may still fetch the removed photo through the history; nobody may edit in a file that
        // is not theirs or not uploaded.
        team.doctor.attachment(team.group, first.id, false).await.unwrap();
        let theirs = team.doctor.upload_attachment(team.group, "dr.png", png(6, 6), None).await.unwrap();
        let r = team.nurse.edit_post_files(team.group, posted.seq, "x", &[theirs.id]).await;
        assert_eq!(code_of(r), ErrorCode::ValidationFailed);
        // Another of the nurse's posts cannot take a file this post shares.
        let other = team.nurse.post(team.group, &post(PostKind::Update, "別の投稿", "ed-2")).await.unwrap();
        let r = team.nurse.edit_post_files(team.group, other.seq, "x", &[second.id]).await;
        assert_eq!(code_of(r), ErrorCode::ValidationFailed);
        // An edit of the text alone keeps the files.
        let kept = team.nurse.edit_post(team.group, posted.seq, "2日目").await.unwrap();
        assert_eq!(kept.attachments.iter().map(|a| a.id).collect::<Vec<_>>(), vec![second.id]);
    }
);
