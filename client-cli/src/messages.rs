//! Posting and reading from the terminal: post, history, edit, delete, 「見ました」, read marks, unread
//! counts, and `tail`, the live view that survives disconnects.

use std::collections::BTreeMap;
use std::io::Read;

use renkei_cli::Client;
use renkei_cli::i18n::{Msg, profession_text};
use renkei_cli::live::{Tail, TailEvent};
use renkei_protocol::{CarePolicy, NewPost, Post, PostKind};
use uuid::Uuid;

use crate::care::resolve_group;
use crate::output::{CliError, Output};

type Result<T> = std::result::Result<T, CliError>;

/// How a post's kind is marked in its heading (an update is not marked).
fn kind_mark(kind: PostKind, lang: renkei_cli::i18n::Lang) -> String {
    match kind {
        PostKind::Update => String::new(),
        other => renkei_cli::i18n::text(lang, &format!("cli-kind-{}", other.as_str())),
    }
}

/// One post as a few lines: number, time, author with profession and organisation, marks, body.
pub fn render_post(out: &Output, group_label: Option<&str>, post: &Post) -> String {
    let mut head = format!(
        "#{} {} {}（{}・{}）{}",
        post.seq,
        out.time(post.created_at),
        post.author.display_name,
        profession_text(post.author.profession, out.lang),
        post.author.organisation,
        kind_mark(post.kind, out.lang)
    );
    if let Some(label) = group_label {
        head = format!("[{label}] {head}");
    }
    if let Some(r) = post.reply_to {
        head.push_str(&format!(" ↩#{r}"));
    }
    if post.deleted_at.is_some() {
        head.push_str(" (deleted)");
    } else if post.edited_at.is_some() {
        head.push_str(" (edited)");
    }
    let body = post.body.as_deref().unwrap_or("—");
    let mut lines: Vec<String> = Vec::new();
    if let Some(policy) = &post.care_policy {
        let changed = if policy.policy_changed { Msg::PolicyChanged } else { Msg::PolicyUnchanged };
        lines.push(format!("    {}: {} ／ {}", out.msg(Msg::NextVisit), policy.next_visit_on, out.msg(changed)));
        if let Some(summary) = &policy.change_summary {
            lines.extend(summary.lines().map(|l| format!("    ▸ {l}")));
        }
    }
    lines.extend(body.lines().map(|l| format!("    {l}")));
    for a in &post.attachments {
        let size = if a.size >= 1 << 20 {
            format!("{:.1} MB", a.size as f64 / f64::from(1 << 20))
        } else {
            format!("{} KB", (a.size + 1023) / 1024)
        };
        let pixels = match (a.width, a.height) {
            (Some(w), Some(h)) => format!(", {w}×{h}"),
            _ => String::new(),
        };
        lines.push(format!("    📎 {} ({}, {size}{pixels}) {}", a.name, a.kind.as_str().to_uppercase(), a.id));
    }
    format!("{head}\n{}", lines.join("\n"))
}

/// Saves a shared file: to `output`, or under its own name in the current directory, never over an
/// existing file.
pub async fn attachment_get(
    client: &Client,
    out: &Output,
    group: &str,
    id: Uuid,
    output: Option<std::path::PathBuf>,
    thumbnail: bool,
) -> Result<()> {
    let group = resolve_group(client, group).await?;
    let (bytes, name) = client.attachment(group, id, thumbnail).await?;
    let path = match output {
        Some(path) => path,
        None => {
            // The server's name is sanitised (no path, no control characters); keep only its last part anyway.
            let name = name
                .as_deref()
                .and_then(|n| std::path::Path::new(n).file_name())
                .map_or_else(|| id.to_string(), |n| n.to_string_lossy().into_owned());
            std::path::PathBuf::from(if thumbnail { format!("thumbnail-{name}.jpg") } else { name })
        }
    };
    let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(CliError::Message(Msg::FileExists)),
        Err(e) => return Err(CliError::Other(format!("{}: {e}", path.display()))),
    };
    std::io::Write::write_all(&mut file, &bytes)?;
    if out.json {
        out.json(&serde_json::json!({ "saved": path, "bytes": bytes.len() }));
    } else {
        println!("{}", path.display());
    }
    Ok(())
}

/// How to post, beyond the text.
#[derive(Debug)]
pub struct PostOptions {
    pub kind: PostKind,
    pub reply_to: Option<i64>,
    pub client_id: Option<String>,
    pub confirm_not_emergency: bool,
    /// Files to upload and share with the post.
    pub attach: Vec<std::path::PathBuf>,
    /// A care policy's record (with `kind` care_policy).
    pub care_policy: Option<CarePolicy>,
}

pub async fn post(
    client: &Client,
    out: &Output,
    group: &str,
    body: Option<String>,
    options: PostOptions,
) -> Result<()> {
    let PostOptions { kind, reply_to, client_id, confirm_not_emergency, attach, care_policy } = options;
    let id = resolve_group(client, group).await?;
    // Every file is read before anything is sent: a missing one stops the post before any upload.
    let mut files = Vec::with_capacity(attach.len());
    for path in &attach {
        let bytes = std::fs::read(path).map_err(|e| CliError::Other(format!("{}: {e}", path.display())))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        files.push((name, bytes));
    }
    let mut attachments = Vec::with_capacity(files.len());
    for (name, bytes) in files {
        let progress = crate::output::upload_progress(out.lang);
        attachments.push(client.upload_attachment(id, &name, bytes, Some(progress)).await?.id);
    }
    let body = match body {
        Some(b) => b,
        // A photo may go without words; otherwise the text comes from stdin.
        None if !attachments.is_empty() => String::new(),
        None => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            text
        }
    };
    let client_msg_id = client_id.unwrap_or_else(|| Uuid::new_v4().to_string());
    let receipt = client
        .post_receipt(
            id,
            &NewPost { kind, body, reply_to, client_msg_id, confirm_not_emergency, attachments, care_policy },
        )
        .await?;
    if out.json {
        out.json(&receipt);
        return Ok(());
    }
    println!("{}", render_post(out, None, &receipt.post));
    if !receipt.off_hours.is_empty() {
        println!("\n{}", out.msg(Msg::OffHours));
        for o in &receipt.off_hours {
            let contact = o.contact_preference.as_deref().unwrap_or("");
            println!("  {}（{}）{contact}", o.person.display_name, profession_text(o.person.profession, out.lang));
        }
    }
    Ok(())
}

pub async fn history(
    client: &Client,
    out: &Output,
    group: &str,
    after: Option<i64>,
    before: Option<i64>,
    limit: i64,
    versions: Option<i64>,
) -> Result<()> {
    let id = resolve_group(client, group).await?;
    if let Some(seq) = versions {
        let history = client.post_history(id, seq).await?;
        if out.json {
            out.json(&history);
        } else {
            let rows = history
                .versions
                .iter()
                .map(|v| {
                    vec![
                        format!("v{}", v.version),
                        out.time(v.at),
                        v.body.clone().unwrap_or_else(|| "(deleted)".into()),
                    ]
                })
                .collect();
            out.table(&["version", "at", "body"], rows);
        }
        return Ok(());
    }
    // Without a position, the latest page.
    let before = match (after, before) {
        (None, None) => Some(client.posts(id, None, None, 1).await?.last_seq + 1),
        (_, b) => b,
    };
    let page = client.posts(id, after, before, limit).await?;
    if out.json {
        out.json(&page);
    } else {
        for post in &page.posts {
            println!("{}\n", render_post(out, None, post));
        }
    }
    Ok(())
}

pub async fn edit(client: &Client, out: &Output, group: &str, seq: i64, body: &str) -> Result<()> {
    let id = resolve_group(client, group).await?;
    let post = client.edit_post(id, seq, body).await?;
    show(out, &post);
    Ok(())
}

pub async fn delete(client: &Client, out: &Output, group: &str, seq: i64) -> Result<()> {
    let id = resolve_group(client, group).await?;
    let post = client.delete_post(id, seq).await?;
    show(out, &post);
    Ok(())
}

fn show(out: &Output, post: &Post) {
    if out.json {
        out.json(post);
    } else {
        println!("{}", render_post(out, None, post));
    }
}

pub async fn seen(client: &Client, out: &Output, group: &str, seq: i64, list: bool) -> Result<()> {
    let id = resolve_group(client, group).await?;
    if !list {
        let mark = client.mark_seen(id, seq).await?;
        if out.json {
            out.json(&mark);
        } else {
            println!("{} #{} — {}", out.msg(Msg::SeenMark), mark.seq, out.time(mark.at));
        }
        return Ok(());
    }
    let seen = client.seen(id, seq).await?;
    if out.json {
        out.json(&seen);
    } else {
        let rows = seen
            .seen
            .iter()
            .map(|m| {
                vec![
                    m.by.display_name.clone(),
                    profession_text(m.by.profession, out.lang).to_owned(),
                    m.by.organisation.clone(),
                    out.time(m.at),
                ]
            })
            .collect();
        out.table(&["seen by", "profession", "organisation", "at"], rows);
    }
    Ok(())
}

pub async fn read(client: &Client, out: &Output, group: &str, seq: Option<i64>) -> Result<()> {
    let id = resolve_group(client, group).await?;
    let seq = match seq {
        Some(s) => s,
        None => client.posts(id, None, None, 1).await?.last_seq,
    };
    let kept = client.mark_read(id, seq).await?;
    if out.json {
        out.json(&serde_json::json!({ "group_id": id, "last_read_seq": kept }));
    } else {
        println!("#{kept}");
    }
    Ok(())
}

pub async fn unread(client: &Client, out: &Output) -> Result<()> {
    let list = client.unread().await?;
    if out.json {
        out.json(&list);
    } else {
        let rows = list
            .groups
            .iter()
            .map(|u| {
                vec![u.label.clone(), u.unread.to_string(), format!("#{}", u.last_read_seq), format!("#{}", u.last_seq)]
            })
            .collect();
        out.table(&["group", "unread", "read up to", "latest"], rows);
    }
    Ok(())
}

/// How often `tail` without groups looks for groups joined since it started.
const NEW_GROUPS_EVERY_SECONDS: u64 = 15;

pub async fn tail(
    client: &Client,
    out: &Output,
    groups: &[String],
    mark_read: bool,
    from_start: bool,
    count: Option<usize>,
) -> Result<()> {
    let mine = client.groups().await?.groups;
    let mut labels = BTreeMap::new();
    let mut start = Vec::new();
    let follow_all = groups.is_empty();
    let selected: Vec<Uuid> = if follow_all {
        mine.iter().map(|g| g.id).collect()
    } else {
        let mut ids = Vec::new();
        for g in groups {
            ids.push(resolve_group(client, g).await?);
        }
        ids
    };
    for id in selected {
        let label = mine.iter().find(|g| g.id == id).map(|g| g.label.clone()).unwrap_or_else(|| id.to_string());
        labels.insert(id, label);
        let after = if from_start { 0 } else { client.posts(id, None, None, 1).await?.last_seq };
        start.push((id, after));
    }
    let mut tail = Tail::new(client.clone(), start);
    if follow_all {
        tail = tail.following_new_groups(std::time::Duration::from_secs(NEW_GROUPS_EVERY_SECONDS));
    }
    let mut shown = 0;
    while count.is_none_or(|c| shown < c) {
        match tail.next().await? {
            TailEvent::Post(post) => {
                shown += 1;
                if out.json {
                    println!("{}", serde_json::to_string(&post).expect("a post serialises: plain fields, string keys"));
                } else {
                    let label = if labels.len() > 1 { labels.get(&post.group_id).map(String::as_str) } else { None };
                    println!("{}\n", render_post(out, label, &post));
                }
                if mark_read {
                    client.mark_read(post.group_id, post.seq).await?;
                }
            }
            TailEvent::Updated(post) if !out.json => println!("{}\n", render_post(out, None, &post)),
            TailEvent::Seen(mark) if !out.json => {
                println!(
                    "  {} #{} — {}（{}）",
                    out.msg(Msg::SeenMark),
                    mark.seq,
                    mark.by.display_name,
                    out.time(mark.at)
                );
            }
            TailEvent::Ended(group) => {
                eprintln!("renkei: {} — membership ended", labels.get(&group).cloned().unwrap_or_default());
                if tail.positions().is_empty() {
                    break;
                }
            }
            // On stderr, so --json output stays clean.
            TailEvent::Reconnected => eprintln!("renkei: {}", out.msg(Msg::Reconnected)),
            TailEvent::Disconnected => eprintln!("renkei: {}", out.msg(Msg::Disconnected)),
            TailEvent::Joined { group_id, label } => {
                eprintln!("renkei: {} {label}", out.msg(Msg::NowFollowing));
                labels.insert(group_id, label);
            }
            _ => {}
        }
    }
    Ok(())
}

/// `renkei chat GROUP`: the latest posts, then a line typed is a post and the others' posts arrive as
/// they are written. Receiving goes through [`Tail`] (a dropped connection resumes without a gap),
/// sending through the API (idempotent by client id); a refusal is explained in place, and a post
/// refused as an emergency is re-sent with `/confirm` once its author confirms it is not one.
pub async fn chat(client: &Client, out: &Output, group: &str, recent: i64) -> Result<()> {
    use tokio::io::AsyncBufReadExt;
    let id = resolve_group(client, group).await?;
    let page = client.posts(id, None, None, recent).await?;
    for post in &page.posts {
        println!("{}\n", render_post(out, None, post));
    }
    let mut tail = Tail::new(client.clone(), [(id, page.last_seq)]);
    eprintln!("{}", out.msg(Msg::ChatHelp));
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    // A post refused as an emergency, kept for /confirm; my posts not yet shown back to me.
    let mut refused: Option<NewPost> = None;
    let mut unseen: std::collections::BTreeSet<i64> = Default::default();
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                let (kind, text) = match line.trim() {
                    "" => continue,
                    "/quit" | "/exit" => break,
                    "/help" => {
                        eprintln!("{}", out.msg(Msg::ChatHelp));
                        continue;
                    }
                    "/confirm" => {
                        match refused.take() {
                            Some(post) => {
                                let post = NewPost { confirm_not_emergency: true, ..post };
                                send_chat(client, out, id, post, &mut refused, &mut unseen).await;
                            }
                            None => eprintln!("renkei: {}", out.msg(Msg::NothingToConfirm)),
                        }
                        continue;
                    }
                    other => match other.split_once(' ') {
                        Some(("/treatment", text)) => (PostKind::TreatmentQuestion, text),
                        Some(("/careplan", text)) => (PostKind::CarePlanQuestion, text),
                        _ => (PostKind::Update, line.as_str()),
                    },
                };
                let post = NewPost {
                    kind,
                    body: text.to_owned(),
                    reply_to: None,
                    client_msg_id: Uuid::new_v4().to_string(),
                    confirm_not_emergency: false,
                    attachments: Vec::new(),
                    care_policy: None,
                };
                send_chat(client, out, id, post, &mut refused, &mut unseen).await;
            }
            event = tail.next() => {
                match event? {
                    TailEvent::Post(post) | TailEvent::Updated(post) => {
                        unseen.remove(&post.seq);
                        println!("{}\n", render_post(out, None, &post));
                    }
                    TailEvent::Seen(mark) => {
                        println!("  {} #{} — {}", out.msg(Msg::SeenMark), mark.seq, mark.by.display_name);
                    }
                    TailEvent::Ended(_) => {
                        eprintln!("renkei: membership ended");
                        return Ok(());
                    }
                    TailEvent::Reconnected => eprintln!("renkei: {}", out.msg(Msg::Reconnected)),
                    TailEvent::Disconnected => eprintln!("renkei: {}", out.msg(Msg::Disconnected)),
                    TailEvent::Joined { .. } => {}
                }
            }
        }
    }
    // Input ended: show my last posts coming back before leaving (bounded).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !unseen.is_empty() {
        match tokio::time::timeout_at(deadline, tail.next()).await {
            Ok(Ok(TailEvent::Post(post))) => {
                unseen.remove(&post.seq);
                println!("{}\n", render_post(out, None, &post));
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => break,
        }
    }
    Ok(())
}

/// Sends one chat line; a refusal is printed in place, not fatal.
async fn send_chat(
    client: &Client,
    out: &Output,
    group: Uuid,
    post: NewPost,
    refused: &mut Option<NewPost>,
    unseen: &mut std::collections::BTreeSet<i64>,
) {
    match client.post_receipt(group, &post).await {
        Ok(receipt) => {
            unseen.insert(receipt.post.seq);
            if !receipt.off_hours.is_empty() {
                let names: Vec<String> = receipt.off_hours.iter().map(|o| o.person.display_name.clone()).collect();
                eprintln!("renkei: {} {}", out.msg(Msg::OffHours), names.join("、"));
            }
        }
        Err(e) => {
            let emergency = e.code() == Some(renkei_protocol::ErrorCode::EmergencyUseProhibited);
            out.error(&e.into());
            if emergency {
                eprintln!("renkei: {}", out.msg(Msg::ChatConfirmHint));
                *refused = Some(post);
            }
        }
    }
}

pub async fn addressed(client: &Client, out: &Output) -> Result<()> {
    let list = client.addressed().await?;
    if out.json {
        out.json(&list);
        return Ok(());
    }
    let labels: BTreeMap<Uuid, String> = client.groups().await?.groups.into_iter().map(|g| (g.id, g.label)).collect();
    for post in &list.posts {
        println!("{}\n", render_post(out, labels.get(&post.group_id).map(String::as_str), post));
    }
    Ok(())
}
