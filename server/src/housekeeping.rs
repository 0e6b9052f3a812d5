//! A node's periodic work: close expired sessions (and their sockets, on every node) and invitations
//! (each with its audit entry), and anchor the audit log: the latest `SEQ HASH` goes to the anchor file
//! (verification checks the log against it, so a log cut short is detected) and to the server's own log
//! (journald keeps it where the database's users cannot reach).

use std::path::Path;
use std::time::Duration;

use crate::domain;
use crate::messaging::hub::SessionsEnded;
use crate::state::AppState;

/// Runs the sweep every `housekeeping_seconds` until aborted.
pub fn start(state: AppState) -> tokio::task::JoinHandle<()> {
    let every = Duration::from_secs(u64::from(state.config.housekeeping_seconds.max(1)));
    tokio::spawn(async move {
        let mut anchored = None;
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = sweep(&state, &mut anchored).await {
                tracing::warn!(error = %e, "housekeeping sweep failed; retrying at the next tick");
            }
        }
    })
}

/// One sweep; `anchored` is the last sequence number written to the anchor file.
pub async fn sweep(state: &AppState, anchored: &mut Option<i64>) -> anyhow::Result<()> {
    let now = domain::now();
    let idle_cutoff = now - time::Duration::minutes(i64::from(state.config.session_idle_minutes));
    let expired = state.store.expire_sessions(now, idle_cutoff).await?;
    let sessions = expired.len();
    let ended: Vec<_> = expired.into_iter().map(|(user, session)| (user, SessionsEnded::One(session))).collect();
    state.messaging.sessions_ended(&ended).await;
    let invitations = state.store.expire_invitations(now).await?;
    // A file no post shared within a day is removed (a post may name one for 12 hours after its upload).
    let attachments = state.store.remove_unreferenced_attachments(now - time::Duration::days(1)).await?;
    if sessions + invitations + usize::try_from(attachments).unwrap_or(usize::MAX) > 0 {
        tracing::info!(sessions, invitations, attachments, "expired");
    }
    purge_due(&state.store, now, state.config.purge_archived_after_days, false).await?;
    if let Some((seq, hash)) = crate::audit::anchor(&state.store).await?
        && *anchored != Some(seq)
    {
        let path = state.config.effective_audit_anchor_file();
        // Another node may have anchored a later entry already: never move the anchor back.
        let kept = crate::audit::configured_anchor(&state.config).ok().flatten();
        if kept.is_none_or(|(kept_seq, _)| kept_seq < seq) {
            write_anchor(&path, seq, &hash)?;
        }
        tracing::info!(target: "renkei_server::audit_anchor", seq, hash = %hash, "audit anchor");
        *anchored = Some(seq);
    }
    Ok(())
}

/// Purges the content of every archived patient group the retention policy says is due at `now` — its
/// attending physician's office's, else the server's (`after_days`) — each in its own transaction with its
/// audit entry; with `dry_run`, only says which. Returns the groups due, each with what was purged (`None`
/// on a dry run, or when another node purged it first).
pub async fn purge_due(
    store: &crate::store::Store,
    now: time::OffsetDateTime,
    after_days: Option<u32>,
    dry_run: bool,
) -> anyhow::Result<Vec<(crate::domain::GroupRecord, Option<crate::store::Purged>)>> {
    let offices: std::collections::HashMap<String, renkei_protocol::OfficeRules> =
        store.all_office_rules().await?.into_iter().map(|o| (o.organisation.clone(), o)).collect();
    if after_days.is_none() && offices.values().all(|o| o.purge_archived_after_days.is_none()) {
        return Ok(Vec::new());
    }
    let mut done = Vec::new();
    for (group, organisation) in store.archived_patient_groups().await? {
        let office = organisation.and_then(|o| offices.get(&o));
        let days = crate::policy::offices::retention_days(after_days, office);
        if !crate::policy::retention::purge_due(&group, now, days) {
            continue;
        }
        let purged = if dry_run { None } else { store.purge_group(&group, now).await?.ok() };
        if let Some(p) = purged {
            // The group's id only: its label named the patient.
            tracing::info!(group = %group.id, posts = p.posts, attachments = p.attachments, "purged under the retention policy");
        }
        done.push((group, purged));
    }
    Ok(done)
}

/// Replaces the anchor file atomically (write a sibling, then rename), so a reader never sees half a line.
fn write_anchor(path: &Path, seq: i64, hash: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let partial = path.with_extension("partial");
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&partial)?;
    std::io::Write::write_all(&mut file, format!("{seq} {hash}\n").as_bytes())?;
    std::fs::rename(&partial, path)
}
