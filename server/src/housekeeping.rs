//! A node's periodic work: close expired sessions (and their sockets, on every node) and invitations
//! (each with its audit entry), and
//! write the latest audit hash to the anchor file, so a log cut short is detected against it
//! (`renkei-server audit verify --anchor FILE`).

use std::path::Path;
use std::time::Duration;

use crate::app::AppState;
use crate::domain;
use crate::messaging::hub::SessionsEnded;

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
    if sessions + invitations > 0 {
        tracing::info!(sessions, invitations, "expired");
    }
    if let Some(path) = &state.config.audit_anchor_file
        && let Some((seq, hash)) = crate::audit::anchor(&state.store).await?
        && *anchored != Some(seq)
    {
        write_anchor(path, seq, &hash)?;
        *anchored = Some(seq);
    }
    Ok(())
}

/// Replaces the anchor file atomically (write a sibling, then rename), so a reader never sees half a line.
fn write_anchor(path: &Path, seq: i64, hash: &str) -> std::io::Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, format!("{seq} {hash}\n"))?;
    std::fs::rename(&partial, path)
}
