//! The monthly care record (居宅療養管理指導) and the timeline export, to the terminal or a folder.

use renkei_cli::Client;
use renkei_cli::i18n::Msg;
use uuid::Uuid;

use crate::care::resolve_group;
use crate::output::{CliError, Output};

type Result<T> = std::result::Result<T, CliError>;

/// The timeline and every file its posts (and their earlier versions) shared, in a new folder: what a
/// clinic files in the medical record. A file of a deleted post is no longer served and is left out.
pub(crate) async fn export_folder(
    client: &Client,
    out: &Output,
    group: Uuid,
    dir: &std::path::Path,
    markdown: bool,
    text: &str,
) -> Result<()> {
    let files = dir.join("files");
    std::fs::create_dir_all(&files)?;
    std::fs::write(dir.join(if markdown { "timeline.md" } else { "timeline.json" }), text)?;
    let export = client.export_timeline(group).await?;
    let mut seen = std::collections::HashSet::new();
    let (mut saved, mut gone) = (0usize, 0usize);
    for e in &export.posts {
        for a in e.post.attachments.iter().chain(e.versions.iter().flat_map(|v| v.attachments.iter())) {
            if !seen.insert(a.id) {
                continue;
            }
            match client.attachment(group, a.id, false).await {
                Ok((bytes, _)) => {
                    let name = std::path::Path::new(&a.name).file_name().map(|n| n.to_string_lossy().into_owned());
                    let path = files.join(format!("{}-{}", a.id, name.unwrap_or_default()));
                    std::fs::write(path, bytes)?;
                    saved += 1;
                }
                Err(renkei_cli::ClientError::Api { status: 404, .. }) => gone += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }
    if out.json {
        out.json(&serde_json::json!({ "folder": dir, "files": saved, "files_of_deleted_posts": gone }));
    } else {
        println!("{} ({saved} files)", dir.display());
    }
    Ok(())
}

/// `renkei record`: a group's care record of a month (a readable summary, JSON, CSV or HTML), or without a
/// group the month's summary of every group I attend.
pub async fn care_record(
    client: &Client,
    out: &Output,
    group: Option<&str>,
    month: &str,
    csv: bool,
    html: bool,
    output: Option<std::path::PathBuf>,
) -> Result<()> {
    let emit = |text: String| -> Result<()> {
        match &output {
            Some(path) => std::fs::write(path, text)?,
            None => print!("{text}"),
        }
        Ok(())
    };
    let Some(group) = group else {
        let summary = client.record_summary(month).await?;
        if out.json {
            return emit(
                serde_json::to_string_pretty(&summary).expect("a summary serialises: plain fields, string keys") + "\n",
            );
        }
        let rows = summary
            .groups
            .iter()
            .map(|g| {
                let state = if g.complete { Msg::RecordComplete } else { Msg::RecordIncomplete };
                let gaps: Vec<&str> = g.gaps.iter().map(|g| g.as_str()).collect();
                vec![g.label.clone(), out.msg(state).to_owned(), gaps.join(" "), g.organisations.to_string()]
            })
            .collect();
        out.table(&["group", "record", "gaps", "organisations"], rows);
        println!("{}: {}", out.msg(Msg::LinkedOrganisations), summary.organisations.len());
        for o in &summary.organisations {
            println!("  {o}");
        }
        return Ok(());
    };
    let id = resolve_group(client, group).await?;
    if csv || html {
        return emit(client.care_record_as(id, month, if csv { "csv" } else { "html" }).await?);
    }
    let record = client.care_record(id, month).await?;
    if out.json || output.is_some() {
        return emit(
            serde_json::to_string_pretty(&record).expect("a care record serialises: plain fields, string keys") + "\n",
        );
    }
    let state = if record.complete { Msg::RecordComplete } else { Msg::RecordIncomplete };
    println!("{} {} — {}", record.label, record.month, out.msg(state));
    for gap in &record.gaps {
        println!("  - {}", gap.as_str());
    }
    for post in &record.care_policies {
        println!("{}", crate::messages::render_post(out, None, post));
    }
    for seen in &record.seen_posts {
        println!("{}", crate::messages::render_post(out, None, &seen.post));
    }
    if let Some(c) = &record.consent {
        println!("consent v{} {} {}", c.version, c.kind.as_str(), c.obtained_on);
    }
    println!("{}: {}", out.msg(Msg::LinkedOrganisations), record.organisations.join("、"));
    Ok(())
}
