//! `resume`: reconnecting sockets catching up on what they missed.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use renkei_protocol::{ClientFrame, ServerFrame, Subscription};

use crate::report::{Goal, Report, histogram};
use crate::servers::{ProcWatch, Servers};

use super::*;

#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct ResumeArgs {
    /// Posts the reader misses while away.
    #[arg(long, default_value_t = 10_000)]
    pub missed: usize,
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
}

/// `resume`: a member is away while `missed` posts arrive; how long until reconnecting has replayed
/// them all, gap-free.
pub async fn resume(servers: &Servers, run: &str, args: &ResumeArgs, report: &mut Report) -> Result<()> {
    report.parameters = serde_json::to_value(args)?;
    let size = 8;
    let groups = provision_timed(servers, run, 1, size, report).await?;
    let group = &groups[0];
    let reader = 1;
    let posters: Vec<usize> = (0..size).filter(|m| *m != reader).collect();
    let mut position = 0i64;
    let mut resume_h = histogram();
    let mut replay_h = histogram();
    let mut gaps = 0u64;
    let watch = ProcWatch::start(servers);
    for round in 0..args.rounds {
        // The others post while the reader is away, in chunks of at most 300 posts per connection:
        // within the server's per-connection burst (2 s at 200 frames/s), so filling is not throttled.
        const CHUNK: usize = 300;
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..args.missed.div_ceil(CHUNK) {
            let count = CHUNK.min(args.missed - c * CHUNK);
            let m = posters[c % posters.len()];
            // Posting needs no subscription (and so no replay of earlier rounds).
            let mut live = group.members[m].client.connect_live().await?;
            let group_id = group.id;
            tasks.spawn(async move {
                let mut outstanding = 0usize;
                let mut sent = 0usize;
                while sent < count || outstanding > 0 {
                    while sent < count && outstanding < 64 {
                        live.send(&new_post(sent.to_string(), group_id, body(round as u64, 0, m))).await?;
                        sent += 1;
                        outstanding += 1;
                    }
                    match tokio::time::timeout(Duration::from_secs(30), live.next()).await {
                        Ok(Some(Ok(ServerFrame::Ack { .. }))) => outstanding -= 1,
                        Ok(Some(Ok(ServerFrame::Error { code, message, .. }))) => bail!("refused: {code} {message}"),
                        Ok(Some(Ok(_))) => {}
                        _ => bail!("a poster's connection stalled or closed"),
                    }
                }
                live.close().await;
                Ok(())
            });
        }
        while let Some(joined) = tasks.join_next().await {
            joined??;
        }
        // The reader comes back.
        let started = Instant::now();
        let client = group.members[reader].client.clone();
        let mut live = client.connect_live().await?;
        let connected = Instant::now();
        live.send(&ClientFrame::Subscribe {
            id: "r".into(),
            groups: vec![Subscription { group_id: group.id, after_seq: position }],
        })
        .await?;
        let mut received = 0usize;
        let mut confirmed = false;
        while received < args.missed || !confirmed {
            match tokio::time::timeout(Duration::from_secs(30), live.next()).await {
                Ok(Some(Ok(ServerFrame::Post { post }))) => {
                    if post.seq != position + 1 {
                        gaps += 1;
                    }
                    position = post.seq;
                    received += 1;
                }
                Ok(Some(Ok(ServerFrame::Subscribed { .. }))) => confirmed = true,
                Ok(Some(Ok(_))) => {}
                _ => bail!("the replay stalled after {received} posts"),
            }
        }
        let done = Instant::now();
        let _ = resume_h.record(micros(done - started).max(1));
        let _ = replay_h.record(micros(done - connected).max(1));
        live.close().await;
    }
    report.processes = watch.finish();
    report.figure(
        &format!("resume with {} missed posts, slowest of {} rounds", args.missed, args.rounds),
        resume_h.max() as f64 / 1000.0,
        "ms",
        Some(Goal::AtMost(200.0)),
    );
    report.latency("reconnect + subscribe + replay", &resume_h);
    report.latency("subscribe + replay (connected)", &replay_h);
    report.count("posts replayed", (args.missed * args.rounds) as u64);
    report.count("gaps or repeats seen", gaps);
    Ok(())
}
