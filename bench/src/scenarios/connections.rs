//! `connections`: many idle sockets, and what each costs the server.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures_util::StreamExt;
use renkei_cli::live::LiveSender;
use renkei_protocol::{NewPost, PostKind, ServerFrame};
use uuid::Uuid;

use crate::report::{Goal, Report};
use crate::servers::{ProcSample, ProcWatch, Servers};

use super::*;

#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct ConnectionsArgs {
    /// Idle sockets to open, each subscribed to its member's group.
    #[arg(long, default_value_t = 15_000)]
    pub sockets: usize,
    /// Groups of 8 members; sockets are spread over their members (several devices each).
    #[arg(long, default_value_t = 125)]
    pub groups: usize,
}

/// `connections`: ramps idle sockets and reports the server's memory per socket.
pub async fn connections(servers: &Servers, run: &str, args: &ConnectionsArgs, report: &mut Report) -> Result<()> {
    // This process holds one descriptor per socket, and so does the server: stay under 20,000 each.
    if args.sockets > 18_000 {
        bail!("at most 18,000 sockets per node: this machine allows 20,000 open files per process");
    }
    report.parameters = serde_json::to_value(args)?;
    let size = 8;
    let groups = provision_timed(servers, run, args.groups, size, report).await?;
    let pid = servers.nodes[0].pid;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = pid.and_then(|p| ProcSample::read(Some(p)));
    let watch = ProcWatch::start(servers);
    let subscribed = Arc::new(AtomicUsize::new(0));
    let delivered = Arc::new(AtomicUsize::new(0));
    let users = groups.len() * size;
    let started = Instant::now();
    let opened: Vec<Result<LiveSender>> = futures_util::stream::iter(0..args.sockets)
        .map(|i| {
            let (subscribed, delivered) = (subscribed.clone(), delivered.clone());
            let groups = &groups;
            async move {
                let (g, m) = ((i % users) / size, (i % users) % size);
                let live = subscribe(servers, &groups[g], m, 0).await?;
                let (sender, mut receiver) = live.split();
                tokio::spawn(async move {
                    while let Some(Ok(frame)) = receiver.next().await {
                        match frame {
                            ServerFrame::Subscribed { .. } => subscribed.fetch_add(1, Ordering::Relaxed),
                            ServerFrame::Post { .. } => delivered.fetch_add(1, Ordering::Relaxed),
                            _ => 0,
                        };
                    }
                });
                Ok(sender)
            }
        })
        .buffer_unordered(100)
        .collect()
        .await;
    let senders = opened.into_iter().collect::<Result<Vec<_>>>()?;
    wait_until(&subscribed, args.sockets, Duration::from_secs(600)).await?;
    let ramp = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = pid.and_then(|p| ProcSample::read(Some(p)));
    report.processes = watch.finish();
    report.figure(
        "idle sockets held",
        subscribed.load(Ordering::Relaxed) as f64,
        "sockets",
        Some(Goal::AtLeast(15_000.0)),
    );
    report.figure("ramp (connect + subscribe)", ramp.as_secs_f64(), "s", None);
    if let (Some(before), Some(after)) = (before, after) {
        let per_socket = after.rss_kib.saturating_sub(before.rss_kib) as f64 / args.sockets as f64;
        report.figure("server memory per idle socket (RSS)", per_socket, "KiB", Some(Goal::AtMost(8.0)));
    }
    // Are they alive? One post in every group reaches every socket of its members.
    let posted = Instant::now();
    for group in &groups {
        group.members[0]
            .client
            .post(
                group.id,
                &NewPost {
                    kind: PostKind::Update,
                    body: "本日の訪問予定に変更はありません。".into(),
                    reply_to: None,
                    client_msg_id: Uuid::new_v4().to_string(),
                    confirm_not_emergency: false,
                    attachments: Vec::new(),
                    care_policy: None,
                },
            )
            .await?;
    }
    let _ = wait_until(&delivered, args.sockets, Duration::from_secs(60)).await;
    report.figure("one post per group reached every socket in", posted.elapsed().as_secs_f64() * 1000.0, "ms", None);
    report.count("sockets", args.sockets as u64);
    report.count("deliveries of the liveness posts", delivered.load(Ordering::Relaxed) as u64);
    for sender in senders {
        drop(sender);
    }
    Ok(())
}
